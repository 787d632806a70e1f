"""The simulated phone network's facade: the Telephony port the app calls (Twilio's REST side,
answering and failing like Twilio), the handset actions, ``tick()`` and what tests and the dev
phone observe, over one shared state and lock.

It stands in for Twilio so faithfully that the app cannot tell the difference: calls and texts
reach the app as signed, form-encoded webhooks carrying Twilio's parameters, the TwiML the app
answers is executed with Twilio's semantics, and the REST side answers and fails like Twilio. It
never contacts Twilio and holds no real credentials.

The work is done by small collaborators that share the state (:mod:`.state`, where the lock
discipline is written down): the job lanes (:mod:`.lanes`), the webhook poster
(:mod:`.delivery`), the timers (:mod:`.timers`), the call lifecycle (:mod:`.lifecycle`), the voice
engine (:mod:`.voice`, with <Gather> and <Record> in :mod:`.listening`), texts
(:mod:`.messaging`) and the handsets (:mod:`.handset`).
"""

from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from hotline.core.clock import Clock
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
from hotline.telephony.simulated.delivery import WebhookPoster
from hotline.telephony.simulated.handset import Handsets
from hotline.telephony.simulated.lanes import Lanes
from hotline.telephony.simulated.lifecycle import CallLifecycle
from hotline.telephony.simulated.messaging import Messaging
from hotline.telephony.simulated.records import (
    HandsetError,
    SimCallInfo,
    SimConversation,
    SimEvent,
    SimMedia,
    SimMessage,
    SimRecording,
    SimText,
    WebhookDelivery,
)
from hotline.telephony.simulated.state import CallState, HandsetState, SimState, StoredRecording
from hotline.telephony.simulated.timers import Timers
from hotline.telephony.simulated.transport import WebhookTransport
from hotline.telephony.simulated.voice import VoiceEngine
from hotline.telephony.simulated.wire import API_VERSION, E164, is_absolute_http, new_sid

log = logging.getLogger(__name__)

#: A well-formed but fake account sid: the simulator has no Twilio account.
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32

DEFAULT_RING_TIMEOUT = 60
#: The longest a <Gather> or <Record> may be stretched for a patient caller.
MAX_PATIENCE = 20.0

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


class SimulatedPhoneNetwork:
    """Twilio, simulated. Implements :class:`hotline.telephony.ports.Telephony`.

    Two sides: the **network** side is the Telephony port the app calls (``place_call``,
    ``send_sms``...); the **handset** side is what a person on a phone does (``dial_hotline``,
    ``press``, ``speak``, ``record``, ``answer``, ``text_hotline``...), used by the browser dev
    phone and by tests. Port methods only queue work, as Twilio's REST API answers before anything
    happens; handset methods and :meth:`tick` run the queue, in the calling thread.
    """

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
        self._state = state = SimState(
            account_sid=account_sid,
            # A random token per instance unless the app shares one with us: nothing real to leak.
            auth_token=auth_token or secrets.token_hex(16),
            hotline_number=hotline_number,
            voice_url=voice_url,
            voice_status_url=voice_status_url,
            sms_url=sms_url,
            clock=clock,
            # An address that can never reach Twilio (.invalid never resolves), shaped like
            # Twilio's.
            media_base_url=(
                media_base_url
                or f"https://api.twilio.sim.invalid/{API_VERSION}/Accounts/{account_sid}"
            ).rstrip("/"),
            max_events=max_events,
        )
        self._lanes = Lanes(state)
        self._poster = WebhookPoster(state, transport)
        self._timers = Timers(state, self._lanes)
        self._lifecycle = CallLifecycle(state, self._lanes, self._poster, self._timers)
        self._voice = VoiceEngine(state, self._lanes, self._poster, self._timers, self._lifecycle)
        self._messaging = Messaging(state, self._lanes, self._poster)
        self._handsets = Handsets(
            state, self._lanes, self._timers, self._lifecycle, self._voice, self._messaging
        )

    @property
    def account_sid(self) -> str:
        return self._state.account_sid

    @property
    def auth_token(self) -> str:
        return self._state.auth_token

    @property
    def hotline_number(self) -> str:
        return self._state.hotline

    @property
    def media_base_url(self) -> str:
        return self._state.media_base

    # ============================================================================================
    # The Telephony port (what the app calls)
    # ============================================================================================

    def place_call(self, request: CallRequest) -> PlacedCall:
        if request.from_ != self._state.hotline:
            raise _rejected(21210, "The source phone number is not a number of this account.")
        if request.to in CALL_MAGIC_NUMBERS:
            code, message = CALL_MAGIC_NUMBERS[request.to]
            raise _permanent(code, message)
        if not E164.match(request.to):
            raise _permanent(21211, "Invalid 'To' Phone Number.")
        if request.url is not None and not is_absolute_http(request.url):
            raise _rejected(21205, "Url is not a valid URL.")
        for name, url in (
            ("StatusCallback", request.status_callback),
            ("AsyncAmdStatusCallback", request.async_amd_status_callback),
        ):
            if url is not None and not is_absolute_http(url):
                raise _rejected(21609, f"{name} is not a valid URL.")
        if request.machine_detection not in (None, "Enable", "DetectMessageEnd"):
            raise _rejected(21626, "MachineDetection must be Enable or DetectMessageEnd.")
        ring_timeout = min(max(request.ring_timeout or DEFAULT_RING_TIMEOUT, 5), 600)
        state = self._state
        with state.lock:
            at = state.clock.now()
            call = CallState(
                sid=new_sid("CA"),
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
            state.calls[call.sid] = call
            state.handset_locked(call.to)
            state.event_locked("call", at, "outbound call placed", call=call)
            self._lifecycle.status_locked(call, "initiated", at)
            self._lifecycle.status_locked(call, "ringing", at)
            call.ring_due = at + timedelta(seconds=ring_timeout)
            self._timers.arm_locked(call, call.ring_due, "ring")
            log.info("sim: outbound call %s ringing", call.sid)
            return PlacedCall(sid=call.sid, status="queued")

    def update_call(self, call_sid: str, update: CallUpdate) -> None:
        state = self._state
        with state.lock:
            call = state.calls.get(call_sid)
            if call is None:
                raise _not_found(f"The requested resource /Calls/{call_sid} was not found")
            at = state.clock.now()
            if update.status is not None:
                if update.status not in ("completed", "canceled"):
                    raise _rejected(21218, f"Invalid status {update.status!r}.")
                if call.ended_at is not None:
                    return
                state.event_locked("update", at, f"status={update.status}", call=call)
                if call.answered_at is None:
                    self._lifecycle.end_locked(call, "canceled", at)
                elif update.status == "completed":
                    self._lifecycle.end_locked(call, "completed", at)
                # "canceled" on an answered call is ignored by Twilio.
                return
            if call.ended_at is not None:
                raise _rejected(21220, "Call is not in-progress. Cannot redirect.")
            if update.url is not None and not is_absolute_http(update.url):
                raise _rejected(21205, "Url is not a valid URL.")
            what = "new TwiML" if update.twiml is not None else "new URL"
            state.event_locked("update", at, f"call redirected to {what}", call=call)
            self._voice.redirect_locked(call, update.url, update.twiml, at)

    def fetch_call_status(self, call_sid: str) -> str:
        with self._state.lock:
            call = self._state.calls.get(call_sid)
            if call is None:
                raise _not_found(f"The requested resource /Calls/{call_sid} was not found")
            return call.status

    def send_sms(self, request: SmsRequest) -> SentMessage:
        if request.from_ != self._state.hotline:
            raise _rejected(
                21606, "The 'From' phone number is not a valid, SMS-capable number of this account."
            )
        if request.to in SMS_MAGIC_NUMBERS:
            code, message = SMS_MAGIC_NUMBERS[request.to]
            raise _permanent(code, message)
        if not E164.match(request.to):
            raise _permanent(21211, "The 'To' number is not a valid phone number.")
        for url in request.media_urls:
            if not is_absolute_http(url):
                raise _rejected(21620, "Invalid media URL(s).")
        if request.status_callback is not None and not is_absolute_http(request.status_callback):
            raise _rejected(21609, "StatusCallback is not a valid URL.")
        state = self._state
        with state.lock:
            if state.handset_locked(request.to).opted_out:
                # Shown on the handset's conversation as failed (the dev phone shows the block).
                self._messaging.refuse_message_locked(
                    to=request.to,
                    from_=request.from_,
                    body=request.body,
                    media=tuple(request.media_urls),
                    at=state.clock.now(),
                )
                raise _permanent(21610, "Attempt to send to unsubscribed recipient.")
            sid = self._messaging.queue_message_locked(
                to=request.to,
                from_=request.from_,
                body=request.body,
                media=tuple(request.media_urls),
                status_callback=request.status_callback,
                at=state.clock.now(),
            )
            return SentMessage(sid=sid, status="queued")

    def fetch_media(self, url: str) -> FetchedMedia:
        with self._state.lock:
            media = self._state.media.get(url)
            if media is not None:
                return media
            recording = self._recording_by_url_locked(url)
            if recording is not None:
                return FetchedMedia(recording.content, recording.info.content_type)
        raise _not_found("The requested media was not found")

    def delete_recording(self, recording_sid: str) -> None:
        with self._state.lock:
            if self._state.recordings.pop(recording_sid, None) is None:
                raise _not_found(
                    f"The requested resource /Recordings/{recording_sid} was not found"
                )

    def delete_media(self, url: str) -> None:
        with self._state.lock:
            if self._state.media.pop(url, None) is None:
                raise _not_found("The requested media was not found")

    def list_inbound_messages(self, to: str, since: datetime) -> list[ProviderMessage]:
        with self._state.lock:
            return [
                ProviderMessage(m.sid, m.handset, m.body, m.at, len(m.media))
                for handset in self._state.handsets.values()
                for m in handset.thread
                if m.direction == "from-handset" and m.other == to and m.at >= since
            ][:MAX_LISTED]

    def list_inbound_calls(self, to: str, since: datetime) -> list[ProviderCall]:
        with self._state.lock:
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
                for call in self._state.calls.values()
                if call.direction == "inbound" and call.to == to and call.created_at >= since
            ][:MAX_LISTED]

    def list_recordings(self, since: datetime) -> list[ProviderRecording]:
        with self._state.lock:
            return [
                ProviderRecording(
                    r.info.sid,
                    r.info.call_sid,
                    r.info.url,
                    "completed",
                    r.info.created_at,
                    r.info.duration,
                )
                for r in self._state.recordings.values()
                if r.info.created_at >= since
            ][:MAX_LISTED]

    def _recording_by_url_locked(self, url: str) -> StoredRecording | None:
        # Twilio serves a recording at its URL, and with .wav/.mp3 appended.
        base = re.sub(r"\.(wav|mp3)$", "", url)
        sid = base.rsplit("/", 1)[-1]
        stored = self._state.recordings.get(sid)
        return stored if stored is not None and stored.info.url == base else None

    # ============================================================================================
    # The handset side (the dev phone, tests): see hotline.telephony.simulated.handset
    # ============================================================================================

    def dial_hotline(self, from_number: str) -> str:
        """Call the hotline from ``from_number`` (any caller id, ``anonymous`` too)."""
        return self._handsets.dial_hotline(from_number)

    def press(self, call_sid: str, digits: str) -> None:
        """Press keys on the handset, one after the other."""
        self._handsets.press(call_sid, digits)

    def speak(self, call_sid: str, text: str, confidence: float = 0.9) -> None:
        """Say something: a speech <Gather> hears it; a <Record> records it."""
        self._handsets.speak(call_sid, text, confidence)

    def record(
        self,
        call_sid: str,
        *,
        text_or_audio: str | bytes,
        finish_key: str | None = "#",
        duration: float | None = None,
    ) -> None:
        """Talk into a <Record>, then press ``finish_key`` (``None``: silence, ``"hangup"``)."""
        self._handsets.record(
            call_sid, text_or_audio=text_or_audio, finish_key=finish_key, duration=duration
        )

    def hang_up(self, call_sid: str) -> None:
        """The handset hangs up (a ringing outbound call is declined)."""
        self._handsets.hang_up(call_sid)

    def answer(
        self, call_sid: str, *, by: str = "human", detection_seconds: float | None = None
    ) -> None:
        """Answer a ringing outbound call as a person (``human``), a ``machine`` or with any
        AnsweredBy value; machine detection gives its verdict after ``detection_seconds``."""
        self._handsets.answer(call_sid, by=by, detection_seconds=detection_seconds)

    def let_ring(self, call_sid: str) -> datetime:
        """Leave a ringing outbound call unanswered; returns when it becomes no-answer."""
        return self._handsets.let_ring(call_sid)

    def decline(self, call_sid: str) -> None:
        """Reject a ringing outbound call (the caller gets busy)."""
        self._handsets.decline(call_sid)

    def text_hotline(
        self,
        from_number: str,
        body: str,
        media: Sequence[tuple[bytes, str]] = (),
    ) -> str:
        """Text the hotline; ``media`` pictures as (content, content type). Returns the sid."""
        return self._handsets.text_hotline(from_number, body, media)

    def set_handset_reachable(self, number: str, reachable: bool) -> None:
        """An unreachable handset (switched off, no signal): texts to it end undelivered."""
        self._handsets.set_reachable(number, reachable)

    @property
    def patience(self) -> float:
        """How many times longer than its TwiML's timeout a <Gather> or <Record> waits for the
        caller (1: as Twilio)."""
        with self._state.lock:
            return self._state.patience

    def set_patience(self, multiplier: float) -> None:
        """Stretch every <Gather> timeout and <Record> silence timeout armed from now on, on
        every call (the dev phone's "patient caller": people reading prompts as they go). 1 is
        Twilio's timing; at most :data:`MAX_PATIENCE`. A timeout already running keeps its time."""
        if not 1 <= multiplier <= MAX_PATIENCE:
            raise ValueError(f"patience is from 1 to {MAX_PATIENCE:g}")
        with self._state.lock:
            self._state.patience = float(multiplier)

    # ============================================================================================
    # Time
    # ============================================================================================

    def tick(self, *, max_timers: int = 1_000) -> int:
        """Run queued work and every timer due at ``clock.now()``; returns timers fired."""
        return self._timers.run_due(self._voice.timer_fired_locked, max_timers=max_timers)

    # ============================================================================================
    # Observation (the dev phone, trainers, tests)
    # ============================================================================================

    def call_log(self, call_sid: str) -> list[SimEvent]:
        with self._state.lock:
            return list(self._state.call_locked(call_sid).log)

    def call_info(self, call_sid: str) -> SimCallInfo:
        with self._state.lock:
            return self._state.call_locked(call_sid).info()

    def calls(self, number: str | None = None) -> list[SimCallInfo]:
        """Every call, oldest first; ``number``: only that handset's calls."""
        with self._state.lock:
            return [
                call.info()
                for call in self._state.calls.values()
                if number is None or call.handset == number
            ]

    def handset_inbox(self, number: str) -> list[SimMessage]:
        """Texts the handset received, oldest first."""
        with self._state.lock:
            handset = self._state.handsets.get(number)
            if handset is None:
                return []
            return [m for m in handset.thread if m.direction == "to-handset"]

    def handset_messages(self, number: str) -> list[SimMessage]:
        """The handset's whole thread with the network, both directions."""
        with self._state.lock:
            handset = self._state.handsets.get(number)
            return list(handset.thread) if handset else []

    def conversations(self) -> list[SimConversation]:
        """Every handset's texts with the network (both directions, the hotline's with their
        delivery state, the refused ones included), handsets in the order they first texted or
        were texted."""
        with self._state.lock:
            return [
                self._conversation_locked(handset)
                for handset in self._state.handsets.values()
                if handset.conversation
            ]

    def conversation(self, number: str) -> SimConversation:
        """One handset's texts (none for a number the network has not seen)."""
        with self._state.lock:
            handset = self._state.handsets.get(number) or HandsetState(number)
            return self._conversation_locked(handset)

    def handset_media(self, message_sid: str, index: int) -> FetchedMedia:
        """A picture a handset sent with its text, by its place in the text (the dev phone
        shows it): the handset's own copy, kept after the hotline deleted the network's (as a
        phone keeps its photos when Twilio's copy is deleted)."""
        with self._state.lock:
            found = next(
                (
                    (handset, m)
                    for handset in self._state.handsets.values()
                    for m in handset.thread
                    if m.sid == message_sid and m.direction == "from-handset"
                ),
                None,
            )
            if found is None or not 0 <= index < len(found[1].media):
                raise HandsetError(f"no picture {index} on {message_sid}")
            handset, message = found
            media = handset.sent_media.get(message.media[index].url)
            if media is None:
                raise HandsetError(f"no picture {index} on {message_sid}")
            return media

    def _conversation_locked(self, handset: HandsetState) -> SimConversation:
        state = self._state
        thread = {m.sid: m for m in handset.thread}
        texts: list[SimText] = []
        for sid in handset.conversation:
            outbound = state.messages.get(sid)
            if outbound is not None:
                texts.append(
                    SimText(
                        sid=sid,
                        at=outbound.created_at,
                        direction="to-handset",
                        sender="hotline",
                        body=outbound.body,
                        media=tuple(SimMedia(url, "") for url in outbound.media),
                        status=outbound.status,
                        error_code=outbound.error_code,
                        error=outbound.error,
                        via=outbound.origin,
                        reply_to=outbound.reply_to,
                    )
                )
                continue
            message = thread.get(sid)
            if message is None:
                continue
            if message.direction == "to-handset":  # the network's own keyword answer
                texts.append(
                    SimText(
                        sid, message.at, message.direction, "network", message.body, (), "delivered"
                    )
                )
                continue
            note = state.inbound_notes.get(sid)
            texts.append(
                SimText(
                    sid=sid,
                    at=message.at,
                    direction="from-handset",
                    sender="handset",
                    body=message.body,
                    media=message.media,
                    status="received",
                    error_code=note.problem_code if note else None,
                    error=note.problem if note else None,
                    keyword=note.keyword if note else None,
                )
            )
        return SimConversation(handset.number, handset.opted_out, handset.reachable, tuple(texts))

    def events_since(self, cursor: int = 0) -> tuple[list[SimEvent], int]:
        """Events after ``cursor`` (a seq) and the cursor to poll with next time."""
        with self._state.lock:
            events = [event for event in self._state.events if event.seq > cursor]
            return events, (events[-1].seq if events else cursor)

    def deliveries(
        self, *, call_sid: str | None = None, message_sid: str | None = None
    ) -> list[WebhookDelivery]:
        """Webhooks posted (most recent few thousand), oldest first."""
        with self._state.lock:
            return self._poster.deliveries_locked(call_sid=call_sid, message_sid=message_sid)

    def redeliver(self, delivery_id: int) -> WebhookDelivery:
        """Post a webhook again with the same idempotency token, as a Twilio retry does, so the
        app's duplicate handling can be rehearsed. The answer is ignored."""
        with self._state.lock:
            original = self._poster.delivery_locked(delivery_id)
        if original is None:
            raise HandsetError(f"no delivery {delivery_id}")
        outcome = self._poster.send(
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
        with self._state.lock:
            return [
                r.info
                for r in self._state.recordings.values()
                if call_sid is None or r.info.call_sid == call_sid
            ]


# --- Twilio's REST errors ----------------------------------------------------------------------


def _rejected(code: int, message: str) -> TelephonyError:
    return TelephonyError(TelephonyErrorKind.REJECTED, message, code=code, http_status=400)


def _permanent(code: int, message: str) -> TelephonyError:
    return TelephonyError(TelephonyErrorKind.PERMANENT_NUMBER, message, code=code, http_status=400)


def _not_found(message: str) -> TelephonyError:
    return TelephonyError(TelephonyErrorKind.REJECTED, message, code=20404, http_status=404)
