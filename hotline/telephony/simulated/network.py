"""The simulated phone network: an adapter of the telephony port for development and training.

It stands in for Twilio so faithfully that the app cannot tell the difference: calls and texts
reach the app as signed, form-encoded webhooks carrying Twilio's parameters, the TwiML the app
answers is executed with Twilio's semantics, and the REST side (the :class:`Telephony` port)
answers and fails like Twilio. It never contacts Twilio and holds no real credentials.

Two sides:

* the **network** side is the Telephony port the app calls (``place_call``, ``send_sms``...);
* the **handset** side is what a person on a phone does (``dial_hotline``, ``press``, ``speak``,
  ``record``, ``answer``, ``text_hotline``...), used by the browser dev phone and by tests.

Concurrency. One re-entrant lock guards all state; webhooks are always posted *outside* it, so
the app may call back into the simulator from inside a webhook (``update_call`` during an AMD
callback, ``send_sms`` while answering a text) without deadlock. Work that posts webhooks is
queued as jobs in *lanes*: one lane per call for its TwiML (Twilio never fetches a call's next
document before the previous answer came back) and separate lanes for callbacks. Port methods
only queue work, like Twilio's REST API answers before anything happens; handset methods and
:meth:`SimulatedPhoneNetwork.tick` run the queue, in the calling thread.

Time. Every timeout (gather, record silence, pause, ring, machine detection, time limit) is a
timer on the injected clock; ``tick()`` fires whatever is due. A timer fires at its own due time,
so a chain of timeouts that all fell due while the clock jumped (``ManualClock.advance``) plays
out in one ``tick()`` exactly as it would have in real time.
"""

from __future__ import annotations

import functools
import heapq
import io
import itertools
import logging
import math
import re
import secrets
import threading
import time
import uuid
import wave
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from urllib.parse import urlencode, urljoin, urlsplit

from hotline.core.clock import Clock
from hotline.core.redaction import redact_text
from hotline.telephony.ports import (
    MAX_LISTED,
    CallRequest,
    CallUpdate,
    FetchedMedia,
    PlacedCall,
    ProviderCall,
    ProviderMessage,
    ProviderRecording,
    SentMessage,
    SmsRequest,
    TelephonyError,
    TelephonyErrorKind,
)
from hotline.telephony.simulated import twiml as tw
from hotline.telephony.simulated.transport import (
    HTTP_RETRIEVAL_FAILURE,
    GetCapableTransport,
    HttpWebhookTransport,
    WebhookDeliveryError,
    WebhookReply,
    WebhookTransport,
    twilio_signature,
)

__all__ = [
    "APPLICATION_ERROR_TEXT",
    "DEFAULT_ACCOUNT_SID",
    "HandsetError",
    "HttpWebhookTransport",
    "SimCallInfo",
    "SimEvent",
    "SimMedia",
    "SimMessage",
    "SimRecording",
    "SimulatedPhoneNetwork",
    "WebhookDelivery",
    "WebhookDeliveryError",
    "WebhookReply",
    "WebhookTransport",
    "twilio_signature",
]

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
#: A well-formed but fake account sid: the simulator has no Twilio account.
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
#: What Twilio's callers hear when a voice webhook fails or its TwiML is unusable.
APPLICATION_ERROR_TEXT = "We are sorry, an application error has occurred. Goodbye."

DEFAULT_RING_TIMEOUT = 60
#: Documents fetched in a row without waiting for the caller: beyond this a <Redirect> loop is
#: assumed (Twilio would loop until the call's time limit; the simulator would spin a thread).
MAX_FETCHES_WITHOUT_WAITING = 50
MAX_SMS_REDIRECTS = 10

FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
ANSWERED_BY_VALUES = frozenset(
    {
        "human",
        "machine_start",
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        "fax",
        "unknown",
    }
)

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")

#: Twilio's test magic numbers ("Test magic numbers" in NOTES.md), so trainers rehearse failures.
SMS_MAGIC_NUMBERS: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "The 'To' number is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient."),
    "+15005550009": (21614, "'To' number is not a valid mobile number."),
}
CALL_MAGIC_NUMBERS: dict[str, tuple[int, str]] = {
    "+15005550001": (21217, "Phone number does not appear to be valid."),
    "+15005550002": (21214, "'To' phone number cannot be reached."),
}

OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
# Twilio's default keyword replies, sent by Twilio itself before it forwards the text to the app.
TWILIO_STOP_REPLY = (
    "You have successfully been unsubscribed. You will not receive any more messages from this "
    "number. Reply START to resubscribe."
)
TWILIO_START_REPLY = (
    "You have successfully been re-subscribed to messages from this number. Reply HELP for "
    "help. Reply STOP to unsubscribe. Msg&Data Rates May Apply."
)
TWILIO_HELP_REPLY = "Reply STOP to unsubscribe. Msg&Data Rates May Apply."

#: How long machine detection takes by default, per verdict (DetectMessageEnd waits for the
#: greeting's beep, hence the long machine_end_* delays).
_DEFAULT_DETECTION_SECONDS: dict[str, float] = {
    "human": 2.0,
    "machine_start": 3.0,
    "machine_end_beep": 8.0,
    "machine_end_silence": 8.0,
    "machine_end_other": 8.0,
    "fax": 4.0,
    "unknown": 5.0,
}

_WORDS_PER_SECOND = 2.5


class HandsetError(RuntimeError):
    """A handset action that cannot happen (unknown or finished call, nothing listening...)."""


# --- what the simulator shows ------------------------------------------------------------------


@dataclass(frozen=True)
class SimEvent:
    """One thing that happened, for the dev phone and trainers' UI.

    ``kind``: say, play, pause, gather, record, recording, dtmf, speech, redirect, hangup,
    reject, dial, amd, status, call, answer, webhook, sms, update, warning, error.
    """

    seq: int
    at: datetime
    kind: str
    text: str = ""
    call_sid: str | None = None
    message_sid: str | None = None
    #: The handset concerned (the caller, the callee, the texter), so a UI can show each phone.
    handset: str | None = None
    language: str | None = None
    voice: str | None = None
    detail: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "text": self.text,
            "call_sid": self.call_sid,
            "message_sid": self.message_sid,
            "handset": self.handset,
            "language": self.language,
            "voice": self.voice,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class SimCallInfo:
    sid: str
    direction: str
    from_: str
    to: str
    handset: str
    status: str
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    answered_by: str | None
    #: ringing, machine-detection, webhook, pause, gather, record, dial; None when ended.
    waiting_for: str | None
    gather_inputs: tuple[str, ...]
    document_url: str | None


@dataclass(frozen=True)
class SimMedia:
    url: str
    content_type: str


@dataclass(frozen=True)
class SimMessage:
    sid: str
    at: datetime
    #: "to-handset" (the handset received it) or "from-handset" (the handset sent it).
    direction: str
    handset: str
    #: The other end: the hotline number, or whoever the message was from/to.
    other: str
    body: str
    media: tuple[SimMedia, ...] = ()


@dataclass(frozen=True)
class SimRecording:
    sid: str
    call_sid: str
    url: str
    duration: int
    content_type: str
    #: What the caller said, when the handset "spoke" text rather than sending audio.
    text: str
    created_at: datetime


@dataclass(frozen=True)
class WebhookDelivery:
    id: int
    at: datetime
    purpose: str
    method: str
    url: str
    params: tuple[tuple[str, str], ...]
    idempotency_token: str
    status: int | None
    error_code: int | None
    error: str | None
    call_sid: str | None = None
    message_sid: str | None = None

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.params if key == name), None)


# --- internal state ----------------------------------------------------------------------------


@dataclass
class _Fetch:
    url: str
    method: str
    params: list[tuple[str, str]]
    purpose: str
    #: The call is over (a hang-up during <Record>): post, but nothing in the answer can run.
    ignore_reply: bool = False


@dataclass
class _Inline:
    twiml: str


_Step = _Fetch | _Inline


@dataclass
class _PauseWait:
    pass


@dataclass
class _GatherWait:
    verb: tw.Gather
    action: str
    prompts: list[tw.Prompt]
    #: False while nested prompts still play (a nested <Pause> is under way).
    listening: bool = False
    digits: str = ""


@dataclass
class _RecordWait:
    verb: tw.Record
    action: str
    status_callback: str | None
    recording_sid: str
    started_at: datetime
    chunks: list[str | bytes] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _DialWait:
    verb: tw.Dial
    action: str | None


_Wait = _PauseWait | _GatherWait | _RecordWait | _DialWait


@dataclass
class _Call:
    sid: str
    direction: str
    from_: str
    to: str
    handset: str
    status: str
    created_at: datetime
    request: CallRequest | None = None
    status_callback: str | None = None
    status_events: frozenset[str] = frozenset()
    answer_url: str | None = None
    answer_twiml: str | None = None
    twiml_started: bool = False
    ring_due: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    answered_by: str | None = None
    amd_verdict: str | None = None
    sequence: int = 0
    doc_url: str | None = None
    verbs: tuple[tw.VoiceVerb, ...] = ()
    pc: int = 0
    wait: _Wait | None = None
    #: Bumped whenever the wait changes: a timer armed for an older wait is stale.
    wait_token: int = 0
    #: Bumped by update_call and by the end of the call: an in-flight webhook answer is dropped.
    epoch: int = 0
    pending_chains: int = 0
    log: list[SimEvent] = field(default_factory=list)


@dataclass(order=True)
class _Timer:
    due: datetime
    seq: int
    call_sid: str = field(compare=False)
    kind: str = field(compare=False)
    token: int = field(compare=False, default=0)


@dataclass
class _Handset:
    number: str
    thread: list[SimMessage] = field(default_factory=list)
    opted_out: bool = False
    reachable: bool = True


@dataclass
class _OutMessage:
    sid: str
    to: str
    from_: str
    body: str
    media: tuple[str, ...]
    status_callback: str | None
    created_at: datetime
    status: str = "queued"


@dataclass
class _StoredRecording:
    info: SimRecording
    content: bytes


@dataclass
class _Outcome:
    reply: WebhookReply | None
    error_code: int | None
    error: str | None
    delivery: WebhookDelivery


@dataclass
class _Job:
    lane: str
    run: Callable[[], None]


class SimulatedPhoneNetwork:
    """Twilio, simulated. Implements :class:`hotline.telephony.ports.Telephony`."""

    def __init__(
        self,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str | None = None,
        hotline_number: str,
        voice_url: str,
        voice_status_url: str | None,
        sms_url: str,
        clock: Clock,
        transport: WebhookTransport,
        media_base_url: str | None = None,
        max_events: int = 20_000,
    ) -> None:
        self._account_sid = account_sid
        # A random token per instance unless the app shares one with us: nothing real to leak.
        self._auth_token = auth_token or secrets.token_hex(16)
        self._hotline = hotline_number
        self._voice_url = voice_url
        self._voice_status_url = voice_status_url
        self._sms_url = sms_url
        self._clock = clock
        self._transport = transport
        # An address that can never reach Twilio (.invalid never resolves), shaped like Twilio's.
        self._media_base = (
            media_base_url or f"https://api.twilio.sim.invalid/{API_VERSION}/Accounts/{account_sid}"
        ).rstrip("/")
        self._lock = threading.RLock()
        self._calls: dict[str, _Call] = {}
        self._handsets: dict[str, _Handset] = {}
        self._messages: dict[str, _OutMessage] = {}
        self._recordings: dict[str, _StoredRecording] = {}
        self._media: dict[str, FetchedMedia] = {}
        self._events: deque[SimEvent] = deque(maxlen=max_events)
        self._event_seq = itertools.count(1)
        self._timers: list[_Timer] = []
        self._timer_seq = itertools.count()
        self._jobs: deque[_Job] = deque()
        #: lane → the thread running its job right now
        self._busy_lanes: dict[str, int] = {}
        self._lanes_changed = threading.Condition(self._lock)
        self._deliveries: deque[WebhookDelivery] = deque(maxlen=5_000)
        self._delivery_seq = itertools.count(1)

    @property
    def account_sid(self) -> str:
        return self._account_sid

    @property
    def auth_token(self) -> str:
        return self._auth_token

    @property
    def hotline_number(self) -> str:
        return self._hotline

    @property
    def media_base_url(self) -> str:
        return self._media_base

    # ============================================================================================
    # The Telephony port (what the app calls)
    # ============================================================================================

    def place_call(self, request: CallRequest) -> PlacedCall:
        if request.from_ != self._hotline:
            raise _rejected(21210, "The source phone number is not a number of this account.")
        if request.to in CALL_MAGIC_NUMBERS:
            code, message = CALL_MAGIC_NUMBERS[request.to]
            raise _permanent(code, message)
        if not _E164.match(request.to):
            raise _permanent(21211, "Invalid 'To' Phone Number.")
        if request.url is not None and not _absolute_http(request.url):
            raise _rejected(21205, "Url is not a valid URL.")
        for name, url in (
            ("StatusCallback", request.status_callback),
            ("AsyncAmdStatusCallback", request.async_amd_status_callback),
        ):
            if url is not None and not _absolute_http(url):
                raise _rejected(21609, f"{name} is not a valid URL.")
        if request.machine_detection not in (None, "Enable", "DetectMessageEnd"):
            raise _rejected(21626, "MachineDetection must be Enable or DetectMessageEnd.")
        ring_timeout = min(max(request.ring_timeout or DEFAULT_RING_TIMEOUT, 5), 600)
        with self._lock:
            at = self._clock.now()
            call = _Call(
                sid=_sid("CA"),
                direction="outbound-api",
                from_=request.from_,
                to=request.to,
                handset=request.to,
                status="queued",
                created_at=at,
                request=request,
                status_callback=request.status_callback,
                status_events=frozenset(request.status_callback_events),
                answer_url=request.url,
                answer_twiml=request.twiml,
            )
            self._calls[call.sid] = call
            self._handset_locked(call.to)
            self._event_locked("call", at, "outbound call placed", call=call)
            self._status_locked(call, "initiated", at)
            self._status_locked(call, "ringing", at)
            call.ring_due = at + timedelta(seconds=ring_timeout)
            self._arm_locked(call, call.ring_due, "ring")
            log.info("sim: outbound call %s ringing", call.sid)
            return PlacedCall(sid=call.sid, status="queued")

    def update_call(self, call_sid: str, update: CallUpdate) -> None:
        with self._lock:
            call = self._calls.get(call_sid)
            if call is None:
                raise _not_found(f"The requested resource /Calls/{call_sid} was not found")
            at = self._clock.now()
            if update.status is not None:
                if update.status not in ("completed", "canceled"):
                    raise _rejected(21218, f"Invalid status {update.status!r}.")
                if call.ended_at is not None:
                    return
                self._event_locked("update", at, f"status={update.status}", call=call)
                if call.answered_at is None:
                    self._end_locked(call, "canceled", at)
                elif update.status == "completed":
                    self._end_locked(call, "completed", at)
                # "canceled" on an answered call is ignored by Twilio.
                return
            if call.ended_at is not None:
                raise _rejected(21220, "Call is not in-progress. Cannot redirect.")
            if update.url is not None and not _absolute_http(update.url):
                raise _rejected(21205, "Url is not a valid URL.")
            what = "new TwiML" if update.twiml is not None else "new URL"
            self._event_locked("update", at, f"call redirected to {what}", call=call)
            if not call.twiml_started and call.direction == "outbound-api":
                # Not answered yet (or machine detection still listening): this is what runs
                # once it is.
                call.answer_url, call.answer_twiml = update.url, update.twiml
                return
            # Whatever the call was doing stops; an answer still in flight is dropped.
            call.epoch += 1
            self._set_wait_locked(call, None)
            step: _Step
            if update.twiml is not None:
                step = _Inline(update.twiml)
            else:
                assert update.url is not None
                step = _Fetch(update.url, "POST", self._call_params_locked(call), "redirect")
            self._start_chain_locked(call, step, at)

    def fetch_call_status(self, call_sid: str) -> str:
        with self._lock:
            call = self._calls.get(call_sid)
            if call is None:
                raise _not_found(f"The requested resource /Calls/{call_sid} was not found")
            return call.status

    def send_sms(self, request: SmsRequest) -> SentMessage:
        if request.from_ != self._hotline:
            raise _rejected(
                21606, "The 'From' phone number is not a valid, SMS-capable number of this account."
            )
        if request.to in SMS_MAGIC_NUMBERS:
            code, message = SMS_MAGIC_NUMBERS[request.to]
            raise _permanent(code, message)
        if not _E164.match(request.to):
            raise _permanent(21211, "The 'To' number is not a valid phone number.")
        for url in request.media_urls:
            if not _absolute_http(url):
                raise _rejected(21620, "Invalid media URL(s).")
        if request.status_callback is not None and not _absolute_http(request.status_callback):
            raise _rejected(21609, "StatusCallback is not a valid URL.")
        with self._lock:
            if self._handset_locked(request.to).opted_out:
                raise _permanent(21610, "Attempt to send to unsubscribed recipient.")
            sid = self._queue_message_locked(
                to=request.to,
                from_=request.from_,
                body=request.body,
                media=tuple(request.media_urls),
                status_callback=request.status_callback,
                at=self._clock.now(),
            )
            return SentMessage(sid=sid, status="queued")

    def fetch_media(self, url: str) -> FetchedMedia:
        with self._lock:
            media = self._media.get(url)
            if media is not None:
                return media
            recording = self._recording_by_url_locked(url)
            if recording is not None:
                return FetchedMedia(recording.content, recording.info.content_type)
        raise _not_found("The requested media was not found")

    def delete_recording(self, recording_sid: str) -> None:
        with self._lock:
            if self._recordings.pop(recording_sid, None) is None:
                raise _not_found(
                    f"The requested resource /Recordings/{recording_sid} was not found"
                )

    def delete_media(self, url: str) -> None:
        with self._lock:
            if self._media.pop(url, None) is None:
                raise _not_found("The requested media was not found")

    def list_inbound_messages(self, to: str, since: datetime) -> list[ProviderMessage]:
        with self._lock:
            return [
                ProviderMessage(m.sid, m.handset, m.body, m.at, len(m.media))
                for handset in self._handsets.values()
                for m in handset.thread
                if m.direction == "from-handset" and m.other == to and m.at >= since
            ][:MAX_LISTED]

    def list_inbound_calls(self, to: str, since: datetime) -> list[ProviderCall]:
        with self._lock:
            return [
                ProviderCall(
                    call.sid,
                    call.from_,
                    call.status,
                    call.answered_at or call.created_at,
                    None
                    if call.ended_at is None or call.answered_at is None
                    else math.ceil((call.ended_at - call.answered_at).total_seconds()),
                )
                for call in self._calls.values()
                if call.direction == "inbound" and call.to == to and call.created_at >= since
            ][:MAX_LISTED]

    def list_recordings(self, since: datetime) -> list[ProviderRecording]:
        with self._lock:
            return [
                ProviderRecording(
                    r.info.sid,
                    r.info.call_sid,
                    r.info.url,
                    "completed",
                    r.info.created_at,
                    r.info.duration,
                )
                for r in self._recordings.values()
                if r.info.created_at >= since
            ][:MAX_LISTED]

    # ============================================================================================
    # The handset side (the dev phone, tests)
    # ============================================================================================

    def dial_hotline(self, from_number: str) -> str:
        """Call the hotline from ``from_number`` (any caller id, ``anonymous`` too)."""
        if not from_number:
            raise ValueError("a caller id is needed (use 'anonymous' for a withheld number)")
        with self._lock:
            at = self._clock.now()
            call = _Call(
                sid=_sid("CA"),
                direction="inbound",
                from_=from_number,
                to=self._hotline,
                handset=from_number,
                status="ringing",
                created_at=at,
                twiml_started=True,
            )
            self._calls[call.sid] = call
            self._handset_locked(from_number)
            self._event_locked("call", at, "calling the hotline", call=call)
            fetch = _Fetch(self._voice_url, "POST", self._call_params_locked(call), "voice")
            self._start_chain_locked(call, fetch, at)
            log.info("sim: inbound call %s", call.sid)
        self._drain()
        self._settle(call.sid)
        return call.sid

    def press(self, call_sid: str, digits: str) -> None:
        """Press keys on the handset, one after the other."""
        if not digits or any(key not in tw.DTMF_KEYS for key in digits):
            raise ValueError(f"keys are among {tw.DTMF_KEYS}")
        with self._lock:
            call = self._live_call_locked(call_sid)
            at = self._clock.now()
            for key in digits:
                if not self._key_locked(call, key, at):
                    self._event_locked("dtmf", at, key, call=call, detail={"heard": "no"})
        self._drain()
        self._settle(call_sid)

    def speak(self, call_sid: str, text: str, confidence: float = 0.9) -> None:
        """Say something: a speech <Gather> hears it; a <Record> records it."""
        with self._lock:
            call = self._live_call_locked(call_sid)
            at = self._clock.now()
            wait = call.wait
            if isinstance(wait, _GatherWait) and "speech" in wait.verb.inputs and text.strip():
                self._event_locked("speech", at, text, call=call)
                wait.listening = True
                self._submit_gather_locked(
                    call,
                    wait,
                    at,
                    [("SpeechResult", text), ("Confidence", format(confidence, ".8g"))],
                )
            elif isinstance(wait, _RecordWait):
                self._event_locked("speech", at, text, call=call)
                self._record_audio_locked(call, wait, text, None, at)
            else:
                self._event_locked("speech", at, text, call=call, detail={"heard": "no"})
        self._drain()
        self._settle(call_sid)

    def record(
        self,
        call_sid: str,
        *,
        text_or_audio: str | bytes,
        finish_key: str | None = "#",
        duration: float | None = None,
    ) -> None:
        """Talk into a <Record>: ``text_or_audio`` is what is said (text, or WAV bytes), then
        ``finish_key`` is pressed; ``None`` goes silent (the record times out), ``"hangup"``
        hangs up. ``duration`` overrides the estimated speaking time in seconds."""
        if finish_key not in (None, "hangup") and (
            len(finish_key) != 1 or finish_key not in tw.DTMF_KEYS
        ):
            raise ValueError("finish_key is one key, None (silence) or 'hangup'")
        with self._lock:
            call = self._live_call_locked(call_sid)
            wait = call.wait
            if not isinstance(wait, _RecordWait):
                raise HandsetError("no <Record> is listening on this call now")
            at = self._clock.now()
            self._record_audio_locked(call, wait, text_or_audio, duration, at)
            if call.wait is wait:  # not already cut off by maxLength
                if finish_key == "hangup":
                    self._hang_up_locked(call, at)
                elif finish_key is not None:
                    self._key_locked(call, finish_key, at)
        self._drain()
        self._settle(call_sid)

    def hang_up(self, call_sid: str) -> None:
        """The handset hangs up (a ringing outbound call is declined)."""
        with self._lock:
            call = self._calls.get(call_sid)
            if call is None:
                raise HandsetError(f"no call {call_sid}")
            if call.ended_at is None:
                self._hang_up_locked(call, self._clock.now())
        self._drain()
        self._settle(call_sid)

    def answer(
        self, call_sid: str, *, by: str = "human", detection_seconds: float | None = None
    ) -> None:
        """Answer a ringing outbound call as a person or an answering machine.

        ``by``: ``human``, ``machine`` (the verdict Twilio's detection mode gives a machine),
        or any AnsweredBy value. With machine detection the verdict comes after
        ``detection_seconds`` of the clock (defaults per verdict), at the next ``tick()``.
        """
        with self._lock:
            call = self._live_call_locked(call_sid)
            if call.direction != "outbound-api" or call.answered_at is not None:
                raise HandsetError("only a ringing outbound call can be answered")
            request = call.request
            assert request is not None
            at = self._clock.now()
            verdict = _verdict(by, request.machine_detection)
            call.answered_at = at
            self._event_locked("answer", at, f"answered by {verdict}", call=call)
            self._status_locked(call, "in-progress", at)
            if request.send_digits:
                self._event_locked("play", at, f"DTMF {request.send_digits}", call=call)
            if request.time_limit:
                self._arm_locked(call, at + timedelta(seconds=request.time_limit), "time_limit")
            if request.machine_detection:
                call.amd_verdict = verdict
                seconds = (
                    detection_seconds
                    if detection_seconds is not None
                    else _DEFAULT_DETECTION_SECONDS[verdict]
                )
                self._arm_locked(call, at + timedelta(seconds=seconds), "amd")
            if not request.machine_detection or request.async_amd:
                # Async detection: the TwiML starts at once, the verdict is posted later.
                self._start_outbound_twiml_locked(call, at)
        self._drain()
        self._settle(call_sid)

    def let_ring(self, call_sid: str) -> datetime:
        """Leave a ringing outbound call unanswered; returns when it becomes no-answer."""
        with self._lock:
            call = self._live_call_locked(call_sid)
            if call.direction != "outbound-api" or call.answered_at is not None:
                raise HandsetError("only a ringing outbound call can be left ringing")
            assert call.ring_due is not None
            self._event_locked("call", self._clock.now(), "left ringing", call=call)
            return call.ring_due

    def decline(self, call_sid: str) -> None:
        """Reject a ringing outbound call (the caller gets busy)."""
        with self._lock:
            call = self._live_call_locked(call_sid)
            if call.direction != "outbound-api" or call.answered_at is not None:
                raise HandsetError("only a ringing outbound call can be declined")
            at = self._clock.now()
            self._event_locked("hangup", at, "declined", call=call)
            self._end_locked(call, "busy", at)
        self._drain()
        self._settle(call_sid)

    def text_hotline(
        self,
        from_number: str,
        body: str,
        media: Sequence[tuple[bytes, str]] = (),
    ) -> str:
        """Text the hotline; ``media`` pictures as (content, content type). Returns the sid."""
        if not body and not media:
            raise ValueError("a text needs a body or media")
        with self._lock:
            at = self._clock.now()
            sid = _sid("MM" if media else "SM")
            handset = self._handset_locked(from_number)
            media_items: list[SimMedia] = []
            for content, content_type in media:
                url = f"{self._media_base}/Messages/{sid}/Media/{_sid('ME')}"
                self._media[url] = FetchedMedia(content, content_type)
                media_items.append(SimMedia(url, content_type))
            handset.thread.append(
                SimMessage(
                    sid, at, "from-handset", from_number, self._hotline, body, tuple(media_items)
                )
            )
            self._event_locked(
                "sms",
                at,
                body,
                handset=from_number,
                message_sid=sid,
                detail={"direction": "from-handset", "media": str(len(media_items))},
            )
            opt_out_type = self._keyword_locked(handset, body, at)
            params = self._sms_params_locked(sid, from_number, body, media_items, opt_out_type)
            self._enqueue_locked(
                f"sms:{sid}", functools.partial(self._run_inbound_sms, sid, from_number, params)
            )
        self._drain()
        return sid

    def set_handset_reachable(self, number: str, reachable: bool) -> None:
        """An unreachable handset (switched off, no signal): texts to it end undelivered."""
        with self._lock:
            self._handset_locked(number).reachable = reachable

    # ============================================================================================
    # Time
    # ============================================================================================

    def tick(self, *, max_timers: int = 1_000) -> int:
        """Run queued work and every timer due at ``clock.now()``; returns timers fired."""
        self._drain()
        now = self._clock.now()
        fired = 0
        while fired < max_timers:
            with self._lock:
                if not self._timers or self._timers[0].due > now:
                    break
                timer = heapq.heappop(self._timers)
                self._fire_locked(timer)
            fired += 1
            # Run what the timer started before looking again: its answer may arm the next
            # timer, already due if the clock jumped ahead.
            self._drain()
        return fired

    # ============================================================================================
    # Observation (the dev phone, trainers, tests)
    # ============================================================================================

    def call_log(self, call_sid: str) -> list[SimEvent]:
        with self._lock:
            call = self._calls.get(call_sid)
            if call is None:
                raise HandsetError(f"no call {call_sid}")
            return list(call.log)

    def call_info(self, call_sid: str) -> SimCallInfo:
        with self._lock:
            call = self._calls.get(call_sid)
            if call is None:
                raise HandsetError(f"no call {call_sid}")
            return self._info_locked(call)

    def calls(self, number: str | None = None) -> list[SimCallInfo]:
        """Every call, oldest first; ``number``: only that handset's calls."""
        with self._lock:
            return [
                self._info_locked(call)
                for call in self._calls.values()
                if number is None or call.handset == number
            ]

    def handset_inbox(self, number: str) -> list[SimMessage]:
        """Texts the handset received, oldest first."""
        with self._lock:
            handset = self._handsets.get(number)
            if handset is None:
                return []
            return [m for m in handset.thread if m.direction == "to-handset"]

    def handset_messages(self, number: str) -> list[SimMessage]:
        """The handset's whole thread with the network, both directions."""
        with self._lock:
            handset = self._handsets.get(number)
            return list(handset.thread) if handset else []

    def events_since(self, cursor: int = 0) -> tuple[list[SimEvent], int]:
        """Events after ``cursor`` (a seq) and the cursor to poll with next time."""
        with self._lock:
            events = [event for event in self._events if event.seq > cursor]
            return events, (events[-1].seq if events else cursor)

    def deliveries(
        self, *, call_sid: str | None = None, message_sid: str | None = None
    ) -> list[WebhookDelivery]:
        """Webhooks posted (most recent few thousand), oldest first."""
        with self._lock:
            return [
                d
                for d in self._deliveries
                if (call_sid is None or d.call_sid == call_sid)
                and (message_sid is None or d.message_sid == message_sid)
            ]

    def redeliver(self, delivery_id: int) -> WebhookDelivery:
        """Post a webhook again with the same idempotency token, as a Twilio retry does, so the
        app's duplicate handling can be rehearsed. The answer is ignored."""
        with self._lock:
            original = next((d for d in self._deliveries if d.id == delivery_id), None)
        if original is None:
            raise HandsetError(f"no delivery {delivery_id}")
        outcome = self._send(
            original.method,
            original.url,
            list(original.params),
            token=original.idempotency_token,
            purpose=original.purpose,
            call_sid=original.call_sid,
            message_sid=original.message_sid,
        )
        return outcome.delivery

    def recordings(self, call_sid: str | None = None) -> list[SimRecording]:
        with self._lock:
            return [
                r.info
                for r in self._recordings.values()
                if call_sid is None or r.info.call_sid == call_sid
            ]

    # ============================================================================================
    # Jobs: work that posts webhooks, run outside the lock
    # ============================================================================================

    def _enqueue_locked(self, lane: str, run: Callable[[], None]) -> None:
        self._jobs.append(_Job(lane, run))

    def _drain(self) -> None:
        """Run queued jobs until none is runnable. A lane busy in another thread (or further up
        this thread's stack) is left to whoever runs it: it picks its next job when done."""
        while True:
            with self._lock:
                job = next((j for j in self._jobs if j.lane not in self._busy_lanes), None)
                if job is None:
                    return
                self._jobs.remove(job)
                self._busy_lanes[job.lane] = threading.get_ident()
            try:
                job.run()
            except Exception:
                # A simulator bug must not wedge the lane or kill the dev server's tick thread.
                log.exception("sim: job on lane %s failed", job.lane)
            finally:
                with self._lock:
                    self._busy_lanes.pop(job.lane, None)
                    self._lanes_changed.notify_all()

    def _settle(self, lane: str, timeout: float = 30.0) -> None:
        """Wait until nothing of ``lane`` is queued or running. Another thread's drain may be
        running this call's TwiML: a handset action is over when the hotline has answered it,
        as for a person (a key pressed before the prompt would otherwise be lost)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lanes_changed:
                owner = self._busy_lanes.get(lane)
                if owner == threading.get_ident():
                    return  # called from within this lane's own job: nothing to wait for
                queued = any(j.lane == lane for j in self._jobs)
                if owner is None and not queued:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.warning("sim: lane %s still busy after %.0f s", lane, timeout)
                    return
                if owner is not None:
                    self._lanes_changed.wait(remaining)
                    continue
            # Queued and nobody running it (queued by the app without draining): run it here,
            # outside the lock, as every job runs.
            self._drain()

    def _send(
        self,
        method: str,
        url: str,
        params: list[tuple[str, str]],
        *,
        token: str | None = None,
        purpose: str,
        call_sid: str | None = None,
        message_sid: str | None = None,
    ) -> _Outcome:
        """Post (or GET) one signed webhook. Never called with the lock held."""
        if method == "GET":
            # Twilio puts the parameters in the query string and signs the whole URL.
            target = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
            signed: list[tuple[str, str]] = []
        else:
            target, signed = url, params
        token = token or str(uuid.uuid4())
        headers = {
            "X-Twilio-Signature": twilio_signature(self._auth_token, target, signed),
            "I-Twilio-Idempotency-Token": token,
            "User-Agent": "TwilioProxy/1.1",
        }
        reply: WebhookReply | None = None
        code: int | None = None
        reason: str | None = None
        try:
            if method == "GET":
                if isinstance(self._transport, GetCapableTransport):
                    reply = self._transport.get(target, headers)
                else:
                    code, reason = HTTP_RETRIEVAL_FAILURE, "this transport cannot send GET"
            else:
                reply = self._transport.post(target, list(signed), headers)
        except WebhookDeliveryError as exc:
            code, reason = exc.code, exc.reason
        except Exception as exc:
            code, reason = HTTP_RETRIEVAL_FAILURE, f"webhook failed: {type(exc).__name__}"
        if reply is not None and not 200 <= reply.status < 300:
            code, reason = HTTP_RETRIEVAL_FAILURE, f"HTTP {reply.status} from {_path(url)}"
        with self._lock:
            at = self._clock.now()
            delivery = WebhookDelivery(
                id=next(self._delivery_seq),
                at=at,
                purpose=purpose,
                method=method,
                url=url,
                params=tuple(params),
                idempotency_token=token,
                status=reply.status if reply is not None else None,
                error_code=code,
                error=reason,
                call_sid=call_sid,
                message_sid=message_sid,
            )
            self._deliveries.append(delivery)
            call = self._calls.get(call_sid) if call_sid else None
            self._event_locked(
                "webhook",
                at,
                f"{method} {_path(url)} ({purpose}) -> "
                + (str(reply.status) if reply is not None else f"error {code}"),
                call=call,
                message_sid=message_sid,
                detail={"purpose": purpose, "url": url, "delivery": str(delivery.id)},
            )
        if code is not None:
            log.warning(
                "sim: %s webhook for %s failed: %s %s",
                purpose,
                call_sid or message_sid,
                code,
                redact_text(reason or ""),
            )
        return _Outcome(reply, code, reason, delivery)

    # --- calls: the TwiML chain ------------------------------------------------------------------

    def _start_chain_locked(self, call: _Call, step: _Step, at: datetime) -> None:
        call.pending_chains += 1
        self._enqueue_locked(
            call.sid, functools.partial(self._run_chain, call.sid, call.epoch, step, at)
        )

    def _run_chain(self, call_sid: str, epoch: int, first: _Step, at: datetime) -> None:
        """Fetch and run documents until the call waits for the caller, a timer, or ends."""
        step: _Step | None = first
        fetches = 0
        try:
            while step is not None:
                with self._lock:
                    call = self._calls[call_sid]
                    stale = call.epoch != epoch or call.ended_at is not None
                    if isinstance(step, _Inline):
                        step = None if stale else self._load_inline_locked(call, step.twiml, at)
                        continue
                    if stale and not step.ignore_reply:
                        return
                    fetches += 1
                    if fetches > MAX_FETCHES_WITHOUT_WAITING:
                        self._app_error_locked(
                            call, 11215, "too many documents without waiting (redirect loop?)", at
                        )
                        return
                fetch = step
                outcome = self._send(
                    fetch.method,
                    fetch.url,
                    fetch.params,
                    purpose=fetch.purpose,
                    call_sid=call_sid,
                )
                if fetch.ignore_reply:
                    return
                with self._lock:
                    call = self._calls[call_sid]
                    if call.epoch != epoch or call.ended_at is not None:
                        self._event_locked(
                            "warning",
                            at,
                            "answer dropped: the call was redirected or ended",
                            call=call,
                        )
                        return
                    step = self._apply_reply_locked(call, fetch, outcome, at)
        finally:
            with self._lock:
                self._calls[call_sid].pending_chains -= 1

    def _apply_reply_locked(
        self, call: _Call, fetch: _Fetch, outcome: _Outcome, at: datetime
    ) -> _Fetch | None:
        if outcome.error_code is not None or outcome.reply is None:
            self._app_error_locked(
                call, outcome.error_code or HTTP_RETRIEVAL_FAILURE, outcome.error or "no answer", at
            )
            return None
        content_type = outcome.reply.content_type.split(";")[0].strip().lower()
        if content_type.startswith("audio/"):
            # Twilio plays an audio answer, then there is nothing more to run.
            self._answer_inbound_locked(call, at)
            self._event_locked("play", at, fetch.url, call=call)
            self._end_locked(call, "completed", at)
            return None
        if content_type not in tw.TWIML_CONTENT_TYPES:
            self._app_error_locked(
                call,
                tw.INVALID_CONTENT_TYPE,
                f"Content-Type {content_type or '(none)'} is not TwiML (answer text/xml)",
                at,
            )
            return None
        try:
            verbs = tw.compile_voice(outcome.reply.body)
        except tw.TwimlError as exc:
            self._app_error_locked(call, exc.code, exc.reason, at)
            return None
        return self._load_locked(call, fetch.url, verbs, at)

    def _load_inline_locked(self, call: _Call, twiml: str, at: datetime) -> _Fetch | None:
        try:
            verbs = tw.compile_voice(twiml)
        except tw.TwimlError as exc:
            self._app_error_locked(call, exc.code, exc.reason, at)
            return None
        return self._load_locked(call, None, verbs, at)

    def _load_locked(
        self, call: _Call, url: str | None, verbs: tuple[tw.VoiceVerb, ...], at: datetime
    ) -> _Fetch | None:
        call.doc_url = url
        call.verbs = verbs
        call.pc = 0
        self._set_wait_locked(call, None)
        return self._continue_locked(call, at)

    def _resume_locked(self, call: _Call, at: datetime) -> None:
        """Go on with the current document outside a chain (after a timeout or a keypress)."""
        self._set_wait_locked(call, None)
        fetch = self._continue_locked(call, at)
        if fetch is not None:
            self._start_chain_locked(call, fetch, at)

    def _continue_locked(self, call: _Call, at: datetime) -> _Fetch | None:
        """Run verbs until one waits (None) or needs a document (the fetch to make)."""
        while call.pc < len(call.verbs):
            verb = call.verbs[call.pc]
            call.pc += 1
            if isinstance(verb, tw.Reject):
                self._reject_locked(call, verb, at)
                return None
            self._answer_inbound_locked(call, at)
            if isinstance(verb, tw.Say | tw.Play):
                self._prompt_locked(call, verb, at)
            elif isinstance(verb, tw.Pause):
                self._event_locked("pause", at, f"{verb.length} s", call=call)
                if verb.length > 0:
                    self._set_wait_locked(call, _PauseWait())
                    self._arm_wait_locked(call, at + timedelta(seconds=verb.length))
                    return None
            elif isinstance(verb, tw.Gather):
                self._start_gather_locked(call, verb, at)
                return None
            elif isinstance(verb, tw.Record):
                self._start_record_locked(call, verb, at)
                return None
            elif isinstance(verb, tw.Redirect):
                url = self._resolve_locked(call, verb.url)
                if url is None:
                    self._app_error_locked(
                        call,
                        tw.INVALID_URL,
                        f"relative <Redirect> {verb.url!r} without a "
                        "document URL to resolve it against",
                        at,
                    )
                    return None
                self._event_locked("redirect", at, url, call=call)
                return _Fetch(url, verb.method, self._call_params_locked(call), "redirect")
            elif isinstance(verb, tw.Hangup):
                self._event_locked("hangup", at, "<Hangup>", call=call)
                self._end_locked(call, "completed", at)
                return None
            elif isinstance(verb, tw.Dial):
                self._start_dial_locked(call, verb, at)
                return None
            else:
                self._event_locked(
                    "warning", at, f"<{verb.name}> is not simulated; skipped", call=call
                )
        self._event_locked("hangup", at, "end of the document", call=call)
        self._end_locked(call, "completed", at)
        return None

    def _prompt_locked(self, call: _Call, verb: tw.Say | tw.Play, at: datetime) -> None:
        if isinstance(verb, tw.Say):
            self._event_locked(
                "say",
                at,
                verb.text,
                call=call,
                language=verb.language,
                voice=verb.voice,
                detail={"loop": str(verb.loop)},
            )
        else:
            text = verb.url or f"DTMF {verb.digits}"
            self._event_locked("play", at, text, call=call, detail={"loop": str(verb.loop)})

    # --- Gather ----------------------------------------------------------------------------------

    def _start_gather_locked(self, call: _Call, verb: tw.Gather, at: datetime) -> None:
        action = self._resolve_locked(call, verb.action) if verb.action else call.doc_url
        if action is None:
            self._app_error_locked(
                call, tw.INVALID_URL, "<Gather> has no action and the TwiML has no URL", at
            )
            return
        wait = _GatherWait(verb=verb, action=action, prompts=list(verb.prompts))
        detail = {
            "input": " ".join(sorted(verb.inputs)),
            "timeout": str(verb.timeout),
            "finishOnKey": verb.finish_on_key,
            "actionOnEmptyResult": str(verb.action_on_empty_result).lower(),
            "action": action,
        }
        if verb.num_digits is not None:
            detail["numDigits"] = str(verb.num_digits)
        if verb.hints:
            detail["hints"] = verb.hints
        if verb.speech_timeout:
            detail["speechTimeout"] = verb.speech_timeout
        self._event_locked(
            "gather",
            at,
            "listening for " + detail["input"],
            call=call,
            language=verb.language,
            detail=detail,
        )
        self._set_wait_locked(call, wait)
        self._play_gather_prompts_locked(call, wait, at)

    def _play_gather_prompts_locked(self, call: _Call, wait: _GatherWait, at: datetime) -> None:
        while wait.prompts:
            prompt = wait.prompts.pop(0)
            if isinstance(prompt, tw.Pause):
                self._event_locked("pause", at, f"{prompt.length} s", call=call)
                if prompt.length > 0:
                    self._arm_wait_locked(call, at + timedelta(seconds=prompt.length))
                    return
            else:
                self._prompt_locked(call, prompt, at)
        # The input timeout counts from the end of the prompts.
        wait.listening = True
        self._arm_wait_locked(call, at + timedelta(seconds=wait.verb.timeout))

    def _key_locked(self, call: _Call, key: str, at: datetime) -> bool:
        """A key pressed on the handset; False when nothing on the call listens for keys."""
        wait = call.wait
        if isinstance(wait, _GatherWait) and "dtmf" in wait.verb.inputs:
            self._event_locked("dtmf", at, key, call=call)
            if not wait.listening:
                if wait.prompts and wait.verb.barge_in:
                    self._event_locked("warning", at, "prompts cut off (barge-in)", call=call)
                    wait.prompts.clear()
                wait.listening = True
            finish = wait.verb.finish_on_key
            if finish and key == finish:
                if wait.digits:
                    self._submit_gather_locked(
                        call, wait, at, [("Digits", wait.digits), ("FinishedOnKey", key)]
                    )
                else:
                    # Twilio: the finish key before any digit is no input at all.
                    self._gather_empty_locked(call, wait, at)
                return True
            wait.digits += key
            if wait.verb.num_digits is not None and len(wait.digits) >= wait.verb.num_digits:
                self._submit_gather_locked(
                    call, wait, at, [("Digits", wait.digits), ("FinishedOnKey", "")]
                )
            else:
                self._arm_wait_locked(call, at + timedelta(seconds=wait.verb.timeout))
            return True
        if isinstance(wait, _RecordWait):
            self._event_locked("dtmf", at, key, call=call)
            if key in wait.verb.finish_on_key:
                if wait.chunks:
                    fetch = self._finish_record_locked(call, wait, at, digits=key)
                    self._start_chain_locked(call, fetch, at)
                else:
                    self._record_empty_locked(call, wait, at, resume=True)
            return True
        return False

    def _submit_gather_locked(
        self, call: _Call, wait: _GatherWait, at: datetime, result: list[tuple[str, str]]
    ) -> None:
        self._set_wait_locked(call, None)
        params = self._call_params_locked(call) + result
        self._start_chain_locked(call, _Fetch(wait.action, wait.verb.method, params, "action"), at)

    def _gather_empty_locked(self, call: _Call, wait: _GatherWait, at: datetime) -> None:
        if wait.verb.action_on_empty_result:
            self._event_locked("gather", at, "no input: posting the action anyway", call=call)
            self._submit_gather_locked(call, wait, at, [])
        else:
            # Twilio does not call the action; the next verb runs.
            self._event_locked("gather", at, "no input: next verb", call=call)
            self._resume_locked(call, at)

    # --- Record ----------------------------------------------------------------------------------

    def _start_record_locked(self, call: _Call, verb: tw.Record, at: datetime) -> None:
        action = self._resolve_locked(call, verb.action) if verb.action else call.doc_url
        if action is None:
            self._app_error_locked(
                call, tw.INVALID_URL, "<Record> has no action and the TwiML has no URL", at
            )
            return
        status_callback = None
        if verb.status_callback:
            status_callback = self._resolve_locked(call, verb.status_callback)
        wait = _RecordWait(
            verb=verb,
            action=action,
            status_callback=status_callback,
            recording_sid=_sid("RE"),
            started_at=at,
        )
        self._event_locked(
            "record",
            at,
            "beep" if verb.play_beep else "recording (no beep)",
            call=call,
            detail={
                "timeout": str(verb.timeout),
                "maxLength": str(verb.max_length),
                "finishOnKey": verb.finish_on_key,
                "action": action,
            },
        )
        self._set_wait_locked(call, wait)
        # Silence from the start: nothing recorded after `timeout` (0 disables it: maxLength).
        wait_for = verb.timeout or verb.max_length
        self._arm_wait_locked(call, at + timedelta(seconds=wait_for))

    def _record_audio_locked(
        self,
        call: _Call,
        wait: _RecordWait,
        audio: str | bytes,
        duration: float | None,
        at: datetime,
    ) -> None:
        if not audio:
            return
        first = not wait.chunks
        wait.chunks.append(audio)
        wait.seconds += duration if duration is not None else _speaking_seconds(audio)
        if first and wait.status_callback and "in-progress" in wait.verb.status_callback_events:
            self._recording_callback_locked(call, wait, "in-progress", 0, at)
        if wait.seconds >= wait.verb.max_length:
            wait.seconds = float(wait.verb.max_length)
            self._start_chain_locked(call, self._finish_record_locked(call, wait, at), at)
        elif wait.verb.timeout:
            # The recording ends after `timeout` seconds of silence unless a key ends it first.
            self._arm_wait_locked(call, at + timedelta(seconds=wait.verb.timeout))

    def _finish_record_locked(
        self,
        call: _Call,
        wait: _RecordWait,
        at: datetime,
        *,
        digits: str | None = None,
        ignore_reply: bool = False,
    ) -> _Fetch:
        self._set_wait_locked(call, None)
        duration = max(1, math.ceil(wait.seconds))
        url = f"{self._media_base}/Recordings/{wait.recording_sid}"
        text = " ".join(chunk for chunk in wait.chunks if isinstance(chunk, str))
        audio = [chunk for chunk in wait.chunks if isinstance(chunk, bytes)]
        content = audio[0] if len(wait.chunks) == 1 and audio else _silent_wav(duration)
        info = SimRecording(
            sid=wait.recording_sid,
            call_sid=call.sid,
            url=url,
            duration=duration,
            content_type="audio/x-wav",
            text=text,
            created_at=at,
        )
        self._recordings[info.sid] = _StoredRecording(info, content)
        self._event_locked(
            "recording",
            at,
            text or f"{len(content)} bytes of audio",
            call=call,
            detail={"url": url, "duration": str(duration), "digits": digits or ""},
        )
        if wait.status_callback and "completed" in wait.verb.status_callback_events:
            self._recording_callback_locked(call, wait, "completed", duration, at)
        status = "completed" if digits == "hangup" else None
        params = [
            *self._call_params_locked(call, status),
            ("RecordingUrl", url),
            ("RecordingSid", info.sid),
            ("RecordingDuration", str(duration)),
        ]
        if digits is not None:
            params.append(("Digits", digits))
        return _Fetch(wait.action, wait.verb.method, params, "action", ignore_reply=ignore_reply)

    def _record_empty_locked(
        self, call: _Call, wait: _RecordWait, at: datetime, *, resume: bool
    ) -> None:
        """Nothing was recorded: Twilio skips the action and runs the next verb."""
        self._event_locked("record", at, "nothing recorded", call=call)
        if wait.status_callback and "absent" in wait.verb.status_callback_events:
            self._recording_callback_locked(call, wait, "absent", 0, at)
        self._set_wait_locked(call, None)
        if resume:
            self._resume_locked(call, at)

    def _recording_callback_locked(
        self, call: _Call, wait: _RecordWait, status: str, duration: int, at: datetime
    ) -> None:
        assert wait.status_callback is not None
        params = [
            ("AccountSid", self._account_sid),
            ("CallSid", call.sid),
            ("RecordingSid", wait.recording_sid),
            ("RecordingUrl", f"{self._media_base}/Recordings/{wait.recording_sid}"),
            ("RecordingStatus", status),
            ("RecordingDuration", str(duration)),
            ("RecordingChannels", "1"),
            ("RecordingSource", "RecordVerb"),
            ("RecordingStartTime", format_datetime(wait.started_at)),
            ("ErrorCode", "0"),
        ]
        self._callback_locked(
            call, wait.status_callback, params, "recording-status", wait.verb.status_callback_method
        )

    # --- Dial, Reject, the end of a call ---------------------------------------------------------

    def _start_dial_locked(self, call: _Call, verb: tw.Dial, at: datetime) -> None:
        action = self._resolve_locked(call, verb.action) if verb.action else None
        if verb.action and action is None:
            self._app_error_locked(call, tw.INVALID_URL, "relative <Dial action> without URL", at)
            return
        self._set_wait_locked(call, _DialWait(verb, action))
        if verb.conference:
            # A lone participant waits until someone joins; nobody ever does here.
            self._event_locked("dial", at, f"{verb.target}: waiting alone", call=call)
        else:
            self._event_locked("dial", at, f"{verb.target}: no answer (not simulated)", call=call)
            self._arm_wait_locked(call, at + timedelta(seconds=verb.timeout))

    def _reject_locked(self, call: _Call, verb: tw.Reject, at: datetime) -> None:
        self._event_locked("reject", at, verb.reason, call=call)
        if call.answered_at is None:
            # Rejected before answering: never billed, ends busy or no-answer.
            self._end_locked(call, "busy" if verb.reason == "busy" else "no-answer", at)
        else:
            self._end_locked(call, "completed", at)

    def _answer_inbound_locked(self, call: _Call, at: datetime) -> None:
        if call.answered_at is None and call.direction == "inbound":
            call.answered_at = at
            self._status_locked(call, "in-progress", at)

    def _hang_up_locked(self, call: _Call, at: datetime) -> None:
        self._event_locked("hangup", at, "the handset hung up", call=call)
        if call.direction == "outbound-api" and call.answered_at is None:
            self._end_locked(call, "busy", at)
            return
        wait = call.wait
        if isinstance(wait, _RecordWait):
            if wait.chunks:
                # Twilio still posts the action (Digits=hangup); nothing it answers can run.
                fetch = self._finish_record_locked(
                    call, wait, at, digits="hangup", ignore_reply=True
                )
                self._start_chain_locked(call, fetch, at)
            else:
                self._record_empty_locked(call, wait, at, resume=False)
        # Twilio does not call a <Gather> action on hang-up: the status callback tells the app.
        self._end_locked(call, "completed" if call.answered_at else "canceled", at)

    def _app_error_locked(self, call: _Call, code: int, reason: str, at: datetime) -> None:
        self._event_locked("error", at, f"{code}: {reason}", call=call, detail={"code": str(code)})
        log.warning("sim: call %s application error %s: %s", call.sid, code, redact_text(reason))
        if call.ended_at is not None:
            return
        self._answer_inbound_locked(call, at)
        self._event_locked("say", at, APPLICATION_ERROR_TEXT, call=call, language="en-US")
        self._end_locked(call, "completed", at)

    def _end_locked(self, call: _Call, status: str, at: datetime) -> None:
        if call.ended_at is not None:
            return
        call.ended_at = at
        call.epoch += 1
        self._set_wait_locked(call, None)
        self._status_locked(call, status, at)
        log.info("sim: call %s ended %s", call.sid, status)

    # --- outbound calls: answering and machine detection ---------------------------------------

    def _start_outbound_twiml_locked(self, call: _Call, at: datetime) -> None:
        call.twiml_started = True
        step: _Step
        if call.answer_twiml is not None:
            step = _Inline(call.answer_twiml)
        else:
            assert call.answer_url is not None
            params = self._call_params_locked(call)
            if call.answered_by is not None:
                params.append(("AnsweredBy", call.answered_by))
            step = _Fetch(call.answer_url, "POST", params, "voice")
        self._start_chain_locked(call, step, at)

    def _amd_verdict_locked(self, call: _Call, at: datetime) -> None:
        request = call.request
        assert request is not None and call.answered_at is not None
        call.answered_by = call.amd_verdict
        self._event_locked("amd", at, call.answered_by or "unknown", call=call)
        duration_ms = int((at - call.answered_at).total_seconds() * 1000)
        if not request.async_amd:
            self._start_outbound_twiml_locked(call, at)
        elif request.async_amd_status_callback:
            params = [
                ("AccountSid", self._account_sid),
                ("CallSid", call.sid),
                ("AnsweredBy", call.answered_by or "unknown"),
                ("MachineDetectionDuration", str(duration_ms)),
            ]
            self._callback_locked(call, request.async_amd_status_callback, params, "amd")

    # --- status callbacks ------------------------------------------------------------------------

    def _status_locked(self, call: _Call, status: str, at: datetime) -> None:
        """Move the call to ``status`` and post the status callback if anyone subscribed."""
        if status != "initiated":  # the resource stays queued; "initiated" is only an event
            call.status = status
        self._event_locked("status", at, status, call=call)
        final = status in FINAL_CALL_STATUSES
        event = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}.get(
            status, "completed" if final else ""
        )
        if call.direction == "inbound":
            # The number's "Call status changes" URL hears about the end of the call only.
            url = self._voice_status_url if final else None
        else:
            url = call.status_callback if event in call.status_events else None
        if not url:
            return
        params = [
            *self._call_params_locked(call, status),
            ("CallbackSource", "call-progress-events"),
            ("SequenceNumber", str(call.sequence)),
            ("Timestamp", format_datetime(at)),
        ]
        call.sequence += 1
        if final:
            duration = 0
            if call.answered_at is not None:
                duration = math.ceil((at - call.answered_at).total_seconds())
            params.append(("CallDuration", str(duration)))
        if call.answered_by is not None:
            params.append(("AnsweredBy", call.answered_by))
        self._callback_locked(call, url, params, "status")

    def _callback_locked(
        self,
        call: _Call,
        url: str,
        params: list[tuple[str, str]],
        purpose: str,
        method: str = "POST",
    ) -> None:
        # Callbacks have their own lane: they never wait for the call's TwiML, nor it for them.
        self._enqueue_locked(
            f"cb:{call.sid}",
            functools.partial(self._post_callback, method, url, params, purpose, call.sid),
        )

    def _post_callback(
        self, method: str, url: str, params: list[tuple[str, str]], purpose: str, call_sid: str
    ) -> None:
        self._send(method, url, params, purpose=purpose, call_sid=call_sid)

    def _call_params_locked(self, call: _Call, status: str | None = None) -> list[tuple[str, str]]:
        params = [
            ("AccountSid", self._account_sid),
            ("ApiVersion", API_VERSION),
            ("CallSid", call.sid),
            ("CallStatus", status or call.status),
            ("Called", call.to),
            ("Caller", call.from_),
            ("Direction", call.direction),
            ("From", call.from_),
            ("To", call.to),
        ]
        # Twilio adds caller-location fields; the app must drop them (anonymity), so send them.
        for prefix, number in (
            ("From", call.from_),
            ("Caller", call.from_),
            ("To", call.to),
            ("Called", call.to),
        ):
            params.extend(_geo(prefix, number))
        if call.direction == "inbound" and call.from_.startswith("+1"):
            params.append(("StirVerstat", "TN-Validation-Passed-A"))
        return params

    # --- timers ----------------------------------------------------------------------------------

    def _arm_locked(self, call: _Call, due: datetime, kind: str, token: int = 0) -> None:
        heapq.heappush(self._timers, _Timer(due, next(self._timer_seq), call.sid, kind, token))

    def _set_wait_locked(self, call: _Call, wait: _Wait | None) -> None:
        call.wait = wait
        call.wait_token += 1

    def _arm_wait_locked(self, call: _Call, due: datetime) -> None:
        """(Re)arm the timer of the current wait; an earlier one for it goes stale."""
        call.wait_token += 1
        self._arm_locked(call, due, "wait", call.wait_token)

    def _fire_locked(self, timer: _Timer) -> None:
        call = self._calls.get(timer.call_sid)
        if call is None or call.ended_at is not None:
            return
        at = timer.due
        if timer.kind == "ring":
            if call.answered_at is None:
                self._event_locked("call", at, "nobody answered", call=call)
                self._end_locked(call, "no-answer", at)
        elif timer.kind == "time_limit":
            self._event_locked("hangup", at, "time limit reached", call=call)
            self._end_locked(call, "completed", at)
        elif timer.kind == "amd":
            self._amd_verdict_locked(call, at)
        elif timer.kind == "wait" and timer.token == call.wait_token:
            self._wait_expired_locked(call, at)

    def _wait_expired_locked(self, call: _Call, at: datetime) -> None:
        wait = call.wait
        if isinstance(wait, _PauseWait):
            self._resume_locked(call, at)
        elif isinstance(wait, _GatherWait):
            if not wait.listening:
                self._play_gather_prompts_locked(call, wait, at)
            elif wait.digits:
                self._submit_gather_locked(
                    call, wait, at, [("Digits", wait.digits), ("FinishedOnKey", "")]
                )
            else:
                self._gather_empty_locked(call, wait, at)
        elif isinstance(wait, _RecordWait):
            if wait.chunks:
                self._start_chain_locked(call, self._finish_record_locked(call, wait, at), at)
            else:
                self._record_empty_locked(call, wait, at, resume=True)
        elif isinstance(wait, _DialWait):
            if wait.action is None:
                self._resume_locked(call, at)
            else:
                self._set_wait_locked(call, None)
                params = [
                    *self._call_params_locked(call),
                    ("DialCallStatus", "no-answer"),
                    ("DialCallDuration", "0"),
                ]
                self._start_chain_locked(
                    call, _Fetch(wait.action, wait.verb.method, params, "action"), at
                )

    # --- SMS -------------------------------------------------------------------------------------

    def _keyword_locked(self, handset: _Handset, body: str, at: datetime) -> str | None:
        """Twilio's own handling of STOP/START/HELP: it answers and still forwards the text."""
        word = body.strip().upper()
        if word in OPT_OUT_WORDS:
            handset.opted_out = True
            self._twilio_reply_locked(handset, TWILIO_STOP_REPLY, at)
            return "STOP"
        if word in OPT_IN_WORDS:
            handset.opted_out = False
            self._twilio_reply_locked(handset, TWILIO_START_REPLY, at)
            return "START"
        if word in HELP_WORDS:
            self._twilio_reply_locked(handset, TWILIO_HELP_REPLY, at)
            return "HELP"
        return None

    def _twilio_reply_locked(self, handset: _Handset, body: str, at: datetime) -> None:
        sid = _sid("SM")
        handset.thread.append(
            SimMessage(sid, at, "to-handset", handset.number, self._hotline, body)
        )
        self._event_locked(
            "sms",
            at,
            body,
            handset=handset.number,
            message_sid=sid,
            detail={"direction": "to-handset", "from": "twilio"},
        )

    def _sms_params_locked(
        self,
        sid: str,
        from_number: str,
        body: str,
        media: list[SimMedia],
        opt_out_type: str | None,
    ) -> list[tuple[str, str]]:
        params = [
            ("AccountSid", self._account_sid),
            ("ApiVersion", API_VERSION),
            ("Body", body),
            ("From", from_number),
            ("MessageSid", sid),
            ("NumMedia", str(len(media))),
            ("NumSegments", str(_segments(body))),
            ("SmsMessageSid", sid),
            ("SmsSid", sid),
            ("SmsStatus", "received"),
            ("To", self._hotline),
        ]
        params.extend(_geo("From", from_number))
        params.extend(_geo("To", self._hotline))
        for index, item in enumerate(media):
            params.append((f"MediaContentType{index}", item.content_type))
            params.append((f"MediaUrl{index}", item.url))
        if opt_out_type:
            params.append(("OptOutType", opt_out_type))
        return params

    def _run_inbound_sms(self, sid: str, sender: str, params: list[tuple[str, str]]) -> None:
        url, method = self._sms_url, "POST"
        for _ in range(MAX_SMS_REDIRECTS):
            outcome = self._send(method, url, params, purpose="sms", message_sid=sid)
            with self._lock:
                at = self._clock.now()
                redirect = self._apply_sms_reply_locked(sid, sender, url, outcome, at)
            if redirect is None:
                return
            url, method = redirect
        with self._lock:
            self._sms_error_locked(sid, sender, 11215, "too many <Redirect>s", self._clock.now())

    def _apply_sms_reply_locked(
        self, sid: str, sender: str, url: str, outcome: _Outcome, at: datetime
    ) -> tuple[str, str] | None:
        if outcome.error_code is not None or outcome.reply is None:
            self._sms_error_locked(
                sid, sender, outcome.error_code or HTTP_RETRIEVAL_FAILURE, outcome.error or "", at
            )
            return None
        body = outcome.reply.body
        if not body.strip():
            return None  # an empty answer: no reply, which is fine for Twilio
        content_type = outcome.reply.content_type.split(";")[0].strip().lower()
        if content_type not in tw.TWIML_CONTENT_TYPES:
            self._sms_error_locked(
                sid, sender, tw.INVALID_CONTENT_TYPE, f"Content-Type {content_type!r}", at
            )
            return None
        try:
            document = tw.compile_messaging(body)
        except tw.TwimlError as exc:
            self._sms_error_locked(sid, sender, exc.code, exc.reason, at)
            return None
        for warning in document.warnings:
            self._event_locked("warning", at, warning, handset=sender, message_sid=sid)
        for verb in document.verbs:
            if isinstance(verb, tw.Redirect):
                return urljoin(url, verb.url), verb.method
            to = verb.to or sender
            if not verb.body and not verb.media:
                self._sms_error_locked(sid, sender, 14103, "<Message> with no body or media", at)
            elif not _E164.match(to):
                self._sms_error_locked(sid, sender, 21211, "<Message to> is not E.164", at)
            elif self._handset_locked(to).opted_out:
                self._sms_error_locked(sid, sender, 21610, "recipient has opted out (STOP)", at)
            else:
                self._queue_message_locked(
                    to=to,
                    from_=verb.from_ or self._hotline,
                    body=verb.body,
                    media=tuple(urljoin(url, m) for m in verb.media),
                    status_callback=urljoin(url, verb.status_callback)
                    if verb.status_callback
                    else None,
                    at=at,
                )
        return None

    def _sms_error_locked(
        self, sid: str, sender: str, code: int, reason: str, at: datetime
    ) -> None:
        self._event_locked(
            "error",
            at,
            f"{code}: {reason}",
            handset=sender,
            message_sid=sid,
            detail={"code": str(code)},
        )
        log.warning("sim: message %s error %s: %s", sid, code, redact_text(reason))

    def _queue_message_locked(
        self,
        *,
        to: str,
        from_: str,
        body: str,
        media: tuple[str, ...],
        status_callback: str | None,
        at: datetime,
    ) -> str:
        message = _OutMessage(
            sid=_sid("MM" if media else "SM"),
            to=to,
            from_=from_,
            body=body,
            media=media,
            status_callback=status_callback,
            created_at=at,
        )
        self._messages[message.sid] = message
        self._handset_locked(to)
        self._event_locked(
            "sms",
            at,
            body,
            handset=to,
            message_sid=message.sid,
            detail={"direction": "to-handset", "status": "queued"},
        )
        self._enqueue_locked(
            f"msg:{message.sid}", functools.partial(self._run_delivery, message.sid)
        )
        return message.sid

    def _run_delivery(self, sid: str) -> None:
        """queued -> sent -> delivered (or undelivered, 30003, for an unreachable handset)."""
        for step in ("queued", "sent", "final"):
            with self._lock:
                message = self._messages[sid]
                at = self._clock.now()
                handset = self._handset_locked(message.to)
                error: str | None = None
                status = step
                if step == "final":
                    if handset.reachable:
                        status = "delivered"
                        handset.thread.append(
                            SimMessage(
                                sid,
                                at,
                                "to-handset",
                                message.to,
                                message.from_,
                                message.body,
                                tuple(SimMedia(url, "") for url in message.media),
                            )
                        )
                    else:
                        status, error = "undelivered", "30003"
                message.status = status
                if step != "queued":
                    self._event_locked(
                        "sms",
                        at,
                        status,
                        handset=message.to,
                        message_sid=sid,
                        detail={"status": status},
                    )
                url = message.status_callback
                params = [
                    ("AccountSid", self._account_sid),
                    ("ApiVersion", API_VERSION),
                    ("From", message.from_),
                    ("MessageSid", sid),
                    ("MessageStatus", status),
                    ("SmsSid", sid),
                    ("SmsStatus", status),
                    ("To", message.to),
                ]
                if error:
                    params.append(("ErrorCode", error))
            if url:
                self._send("POST", url, params, purpose="message-status", message_sid=sid)

    # --- small helpers ---------------------------------------------------------------------------

    def _event_locked(
        self,
        kind: str,
        at: datetime,
        text: str = "",
        *,
        call: _Call | None = None,
        handset: str | None = None,
        message_sid: str | None = None,
        language: str | None = None,
        voice: str | None = None,
        detail: dict[str, str] | None = None,
    ) -> SimEvent:
        event = SimEvent(
            seq=next(self._event_seq),
            at=at,
            kind=kind,
            text=text,
            call_sid=call.sid if call else None,
            message_sid=message_sid,
            handset=handset or (call.handset if call else None),
            language=language,
            voice=voice,
            detail=detail or {},
        )
        self._events.append(event)
        if call is not None:
            call.log.append(event)
        return event

    def _handset_locked(self, number: str) -> _Handset:
        handset = self._handsets.get(number)
        if handset is None:
            handset = self._handsets[number] = _Handset(number)
        return handset

    def _live_call_locked(self, call_sid: str) -> _Call:
        call = self._calls.get(call_sid)
        if call is None:
            raise HandsetError(f"no call {call_sid}")
        if call.ended_at is not None:
            raise HandsetError(f"call {call_sid} has ended ({call.status})")
        return call

    def _resolve_locked(self, call: _Call, url: str) -> str | None:
        """A TwiML URL, relative ones resolved against the current document's URL."""
        if _absolute_http(url):
            return url
        return urljoin(call.doc_url, url) if call.doc_url else None

    def _recording_by_url_locked(self, url: str) -> _StoredRecording | None:
        # Twilio serves a recording at its URL, and with .wav/.mp3 appended.
        base = re.sub(r"\.(wav|mp3)$", "", url)
        sid = base.rsplit("/", 1)[-1]
        stored = self._recordings.get(sid)
        return stored if stored is not None and stored.info.url == base else None

    def _info_locked(self, call: _Call) -> SimCallInfo:
        wait = call.wait
        waiting: str | None
        if call.ended_at is not None:
            waiting = None
        elif call.direction == "outbound-api" and call.answered_at is None:
            waiting = "ringing"
        elif isinstance(wait, _GatherWait):
            waiting = "gather"
        elif isinstance(wait, _RecordWait):
            waiting = "record"
        elif isinstance(wait, _PauseWait):
            waiting = "pause"
        elif isinstance(wait, _DialWait):
            waiting = "dial"
        elif not call.twiml_started:
            waiting = "machine-detection"
        else:
            waiting = "webhook" if call.pending_chains else None
        return SimCallInfo(
            sid=call.sid,
            direction=call.direction,
            from_=call.from_,
            to=call.to,
            handset=call.handset,
            status=call.status,
            created_at=call.created_at,
            answered_at=call.answered_at,
            ended_at=call.ended_at,
            answered_by=call.answered_by,
            waiting_for=waiting,
            gather_inputs=tuple(sorted(wait.verb.inputs)) if isinstance(wait, _GatherWait) else (),
            document_url=call.doc_url,
        )


# --- module helpers ----------------------------------------------------------------------------


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _absolute_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _path(url: str) -> str:
    return urlsplit(url).path or "/"


def _rejected(code: int, message: str) -> TelephonyError:
    return TelephonyError(TelephonyErrorKind.REJECTED, message, code=code, http_status=400)


def _permanent(code: int, message: str) -> TelephonyError:
    return TelephonyError(TelephonyErrorKind.PERMANENT_NUMBER, message, code=code, http_status=400)


def _not_found(message: str) -> TelephonyError:
    return TelephonyError(TelephonyErrorKind.REJECTED, message, code=20404, http_status=404)


def _verdict(by: str, machine_detection: str | None) -> str:
    if by == "machine":
        return "machine_start" if machine_detection == "Enable" else "machine_end_beep"
    if by not in ANSWERED_BY_VALUES:
        raise ValueError(f"by is 'human', 'machine' or one of {sorted(ANSWERED_BY_VALUES)}")
    return by


def _geo(prefix: str, number: str) -> list[tuple[str, str]]:
    """Made-up but plausible caller-location fields (Twilio sends them for most numbers)."""
    if number.startswith("+1"):
        city, state, zip_code, country = "SPRINGFIELD", "IL", "62701", "US"
    elif number.startswith("+52"):
        city, state, zip_code, country = "", "", "", "MX"
    else:
        city = state = zip_code = country = ""
    return [
        (f"{prefix}City", city),
        (f"{prefix}Country", country),
        (f"{prefix}State", state),
        (f"{prefix}Zip", zip_code),
    ]


def _segments(body: str) -> int:
    # GSM-7 fits 160 characters (153 per part when split); anything else is UCS-2 (70/67).
    single, part = (160, 153) if all(ord(c) < 128 for c in body) else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / part)


def _speaking_seconds(audio: str | bytes) -> float:
    if isinstance(audio, str):
        return max(1.0, len(audio.split()) / _WORDS_PER_SECOND)
    try:
        with wave.open(io.BytesIO(audio)) as wav:
            frames: int = wav.getnframes()
            rate: int = wav.getframerate()
            return frames / float(rate)
    except (wave.Error, EOFError):
        return max(1.0, len(audio) / 16_000)  # 8 kHz, 16-bit


def _silent_wav(seconds: int) -> bytes:
    """A real WAV file of the recording's length, so a UI can play it and tools can read it."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(b"\x80" * (8000 * seconds))
    return buffer.getvalue()
