"""The state every part of the simulated network shares, behind one lock: the calls and what each
is doing, the handsets, texts, recordings, media and the event feed.

Lock discipline, for the whole package. The network is driven from several threads at once (the
dev server's request threads, the embedded worker's ``tick()``, the app's threads calling the
port while they answer a webhook). One re-entrant lock, :attr:`SimState.lock`, guards all of its
state: what is here and what the collaborators keep (the job lanes, the timer queue, the log of
webhook deliveries). There is no other lock.

* A method whose name ends in ``_locked`` is called with the lock held; it changes state, queues
  jobs and arms timers, and never waits or posts.
* A webhook is posted only while the lock is *not* held (``WebhookPoster.send``, which takes it
  briefly afterwards to log the delivery), so the app may call back into the network from inside
  a webhook (``update_call`` during an AMD callback, ``send_sms`` while answering a text).
* Work that posts is queued as a job under the lock and run without it by ``Lanes.drain``, in
  whichever thread drives the network next.
* The port's methods (the app's REST calls) take the lock and only queue work, as Twilio's API
  answers before anything happens. Handset actions and ``tick()`` take it to change state, let it
  go, then drain the queue in the calling thread.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin

from hotline.core.clock import Clock
from hotline.telephony.ports import CallRequest, FetchedMedia
from hotline.telephony.simulated import twiml as tw
from hotline.telephony.simulated.records import (
    HandsetError,
    SimCallInfo,
    SimEvent,
    SimMessage,
    SimRecording,
)
from hotline.telephony.simulated.wire import is_absolute_http

# --- the next document a call runs -------------------------------------------------------------


@dataclass
class Fetch:
    """A document to fetch from the app (the voice URL, an action, a redirect)."""

    url: str
    method: str
    params: list[tuple[str, str]]
    purpose: str
    #: The call is over (a hang-up during <Record>): post, but nothing in the answer can run.
    ignore_reply: bool = False


@dataclass
class InlineTwiml:
    """A document the app gave with its REST request (``twiml=`` on a call or a call update)."""

    twiml: str


Step = Fetch | InlineTwiml


# --- what a call is waiting for ----------------------------------------------------------------


@dataclass
class PauseWait:
    pass


@dataclass
class GatherWait:
    verb: tw.Gather
    action: str
    prompts: list[tw.Prompt]
    #: False while nested prompts still play (a nested <Pause> is under way).
    listening: bool = False
    digits: str = ""


@dataclass
class RecordWait:
    verb: tw.Record
    action: str
    status_callback: str | None
    recording_sid: str
    started_at: datetime
    chunks: list[str | bytes] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class DialWait:
    verb: tw.Dial
    action: str | None


Wait = PauseWait | GatherWait | RecordWait | DialWait


# --- calls, handsets, texts, recordings --------------------------------------------------------


@dataclass
class CallState:
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
    wait: Wait | None = None
    #: Bumped whenever the wait changes: a timer armed for an older wait is stale.
    wait_token: int = 0
    #: When the current wait's timer fires, and for a <Gather> or <Record> listening to the
    #: caller, how many seconds it was given (the TwiML's timeout times the network's patience).
    wait_due: datetime | None = None
    listen_seconds: float | None = None
    #: Bumped by update_call and by the end of the call: an in-flight webhook answer is dropped.
    epoch: int = 0
    pending_chains: int = 0
    log: list[SimEvent] = field(default_factory=list)

    def resolve(self, url: str) -> str | None:
        """A TwiML URL, relative ones resolved against the current document's URL."""
        if is_absolute_http(url):
            return url
        return urljoin(self.doc_url, url) if self.doc_url else None

    def info(self) -> SimCallInfo:
        """The call as the dev phone and tests see it."""
        wait = self.wait
        waiting: str | None
        if self.ended_at is not None:
            waiting = None
        elif self.direction == "outbound-api" and self.answered_at is None:
            waiting = "ringing"
        elif isinstance(wait, GatherWait):
            waiting = "gather"
        elif isinstance(wait, RecordWait):
            waiting = "record"
        elif isinstance(wait, PauseWait):
            waiting = "pause"
        elif isinstance(wait, DialWait):
            waiting = "dial"
        elif not self.twiml_started:
            waiting = "machine-detection"
        else:
            waiting = "webhook" if self.pending_chains else None
        listening = (isinstance(wait, GatherWait) and wait.listening) or isinstance(
            wait, RecordWait
        )
        return SimCallInfo(
            sid=self.sid,
            direction=self.direction,
            from_=self.from_,
            to=self.to,
            handset=self.handset,
            status=self.status,
            created_at=self.created_at,
            answered_at=self.answered_at,
            ended_at=self.ended_at,
            answered_by=self.answered_by,
            waiting_for=waiting,
            gather_inputs=tuple(sorted(wait.verb.inputs)) if isinstance(wait, GatherWait) else (),
            document_url=self.doc_url,
            listen_until=self.wait_due if listening and self.ended_at is None else None,
            listen_seconds=self.listen_seconds if listening and self.ended_at is None else None,
        )


@dataclass
class HandsetState:
    number: str
    #: What the handset itself holds: the texts it sent and the ones that reached it.
    thread: list[SimMessage] = field(default_factory=list)
    opted_out: bool = False
    reachable: bool = True
    #: The sids of every text to or from the handset in the order the network took them: what
    #: the handset sent, the network's own keyword answers, and what the hotline sent whether it
    #: arrived or not (still queued, undelivered, refused after STOP). The dev phone's view.
    conversation: list[str] = field(default_factory=list)
    #: The pictures the handset sent, by media URL: the phone keeps its own photos after the
    #: hotline deleted the provider's copy.
    sent_media: dict[str, FetchedMedia] = field(default_factory=dict)


@dataclass
class InboundNote:
    """What the network knows of a handset's text besides the text: the keyword it answered
    itself, and why the app's answer went nowhere (a failed webhook, unusable TwiML)."""

    keyword: str | None = None
    problem_code: str | None = None
    problem: str | None = None


@dataclass
class OutboundMessage:
    """A text the network carries to a handset (sent by the app, or a <Message> it answered)."""

    sid: str
    to: str
    from_: str
    body: str
    media: tuple[str, ...]
    status_callback: str | None
    created_at: datetime
    status: str = "queued"
    #: "api" (the app's REST request) or "reply" (a <Message> answering ``reply_to``).
    origin: str = "api"
    reply_to: str | None = None
    #: Twilio's error code and its meaning once undelivered or failed.
    error_code: str | None = None
    error: str | None = None


@dataclass
class StoredRecording:
    info: SimRecording
    content: bytes


# --- the shared state --------------------------------------------------------------------------


class SimState:
    """The network's configuration and everything it keeps, guarded by :attr:`lock`."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        hotline_number: str,
        voice_url: str,
        voice_status_url: str | None,
        sms_url: str,
        clock: Clock,
        media_base_url: str,
        max_events: int,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.hotline = hotline_number
        self.voice_url = voice_url
        self.voice_status_url = voice_status_url
        self.sms_url = sms_url
        self.clock = clock
        self.media_base = media_base_url
        #: The one lock of the package (see the module docstring).
        self.lock = threading.RLock()
        self.calls: dict[str, CallState] = {}
        self.handsets: dict[str, HandsetState] = {}
        self.messages: dict[str, OutboundMessage] = {}
        self.recordings: dict[str, StoredRecording] = {}
        self.media: dict[str, FetchedMedia] = {}
        self.inbound_notes: dict[str, InboundNote] = {}
        #: How much longer than its TwiML says a <Gather> or <Record> waits for the caller
        #: (the dev phone's "patient caller": people reading the prompts as they go). 1: as
        #: Twilio does.
        self.patience = 1.0
        self.events: deque[SimEvent] = deque(maxlen=max_events)
        self._event_seq = itertools.count(1)

    def event_locked(
        self,
        kind: str,
        at: datetime,
        text: str = "",
        *,
        call: CallState | None = None,
        handset: str | None = None,
        message_sid: str | None = None,
        language: str | None = None,
        voice: str | None = None,
        detail: dict[str, str] | None = None,
    ) -> SimEvent:
        """Append an event to the feed (and to the call's own log)."""
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
        self.events.append(event)
        if call is not None:
            call.log.append(event)
        return event

    def handset_locked(self, number: str) -> HandsetState:
        """The handset with this number; a number the network has not seen yet gets one."""
        handset = self.handsets.get(number)
        if handset is None:
            handset = self.handsets[number] = HandsetState(number)
        return handset

    def call_locked(self, call_sid: str) -> CallState:
        call = self.calls.get(call_sid)
        if call is None:
            raise HandsetError(f"no call {call_sid}")
        return call

    def live_call_locked(self, call_sid: str) -> CallState:
        call = self.call_locked(call_sid)
        if call.ended_at is not None:
            raise HandsetError(f"call {call_sid} has ended ({call.status})")
        return call
