"""A recording fake of the telephony port, for tests that are not about the phone network.

It records every request, hands out Twilio-shaped sids, and can be told to fail: the next N
requests of a kind raise a given TelephonyError, or a given number always fails; and it can run
something while a request is under way (a callback racing the answer, a sweep).
"""

from __future__ import annotations

import secrets
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from hotline.telephony.ports import (
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
)


@dataclass(frozen=True)
class Listing:
    """One listing asked of the provider: which, to which number (None for recordings), since."""

    method: str
    to: str | None
    since: datetime


@dataclass
class FakeTelephony:
    calls: list[CallRequest] = field(default_factory=list)
    call_sids: list[str] = field(default_factory=list)
    updates: list[tuple[str, CallUpdate]] = field(default_factory=list)
    messages: list[SmsRequest] = field(default_factory=list)
    deleted_recordings: list[str] = field(default_factory=list)
    deleted_media: list[str] = field(default_factory=list)
    #: What fetch_media is asked for, and serves (unknown URLs: a short WAV, as recordings).
    fetched_media: list[str] = field(default_factory=list)
    media: dict[str, FetchedMedia] = field(default_factory=dict)
    call_statuses: dict[str, str] = field(default_factory=dict)
    #: What the provider's logs hold, for the list_* methods (tests add to them).
    inbound_messages: list[ProviderMessage] = field(default_factory=list)
    inbound_calls: list[ProviderCall] = field(default_factory=list)
    recordings: list[ProviderRecording] = field(default_factory=list)
    #: Every listing asked for, in order.
    listings: list[Listing] = field(default_factory=list)
    _failures: dict[str, deque[TelephonyError]] = field(default_factory=lambda: defaultdict(deque))
    _failing_numbers: dict[str, TelephonyError] = field(default_factory=dict)
    _meanwhile: dict[str, deque[Callable[[], None]]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # Telling it to fail -------------------------------------------------------------------------

    def fail_next(self, operation: str, error: TelephonyError, times: int = 1) -> None:
        """``operation`` is a port method name: place_call, send_sms, update_call, ..."""
        with self._lock:
            self._failures[operation].extend([error] * times)

    def fail_number(self, number: str, error: TelephonyError) -> None:
        with self._lock:
            self._failing_numbers[number] = error

    def meanwhile(self, operation: str, action: Callable[[], None]) -> None:
        """Run ``action`` once while the next ``operation`` request is under way (after the
        request left, before its answer): what the rest of the world does in that gap."""
        with self._lock:
            self._meanwhile[operation].append(action)

    def _during(self, operation: str) -> None:
        with self._lock:
            action = self._meanwhile[operation].popleft() if self._meanwhile[operation] else None
        if action is not None:
            action()

    def _maybe_fail(self, operation: str, number: str | None = None) -> None:
        with self._lock:
            if self._failures[operation]:
                raise self._failures[operation].popleft()
            if number is not None and number in self._failing_numbers:
                raise self._failing_numbers[number]

    # The port ---------------------------------------------------------------------------------

    def place_call(self, request: CallRequest) -> PlacedCall:
        self._maybe_fail("place_call", request.to)
        sid = "CA" + secrets.token_hex(16)
        with self._lock:
            self.calls.append(request)
            self.call_sids.append(sid)
            self.call_statuses[sid] = "queued"
        self._during("place_call")
        return PlacedCall(sid=sid, status="queued")

    def update_call(self, call_sid: str, update: CallUpdate) -> None:
        self._maybe_fail("update_call")
        with self._lock:
            self.updates.append((call_sid, update))
            if update.status is not None:
                self.call_statuses[call_sid] = update.status

    def fetch_call_status(self, call_sid: str) -> str:
        self._maybe_fail("fetch_call_status")
        with self._lock:
            return self.call_statuses.get(call_sid, "completed")

    def send_sms(self, request: SmsRequest) -> SentMessage:
        self._maybe_fail("send_sms", request.to)
        with self._lock:
            self.messages.append(request)
        self._during("send_sms")
        return SentMessage(sid="SM" + secrets.token_hex(16), status="queued")

    def fetch_media(self, url: str) -> FetchedMedia:
        self._maybe_fail("fetch_media")
        with self._lock:
            self.fetched_media.append(url)
        self._during("fetch_media")
        with self._lock:
            return self.media.get(url, FetchedMedia(b"RIFF-fake-audio", "audio/x-wav"))

    def delete_recording(self, recording_sid: str) -> None:
        self._maybe_fail("delete_recording")
        with self._lock:
            self.deleted_recordings.append(recording_sid)

    def delete_media(self, url: str) -> None:
        self._maybe_fail("delete_media")
        with self._lock:
            self.deleted_media.append(url)
        self._during("delete_media")

    def list_inbound_messages(self, to: str, since: datetime) -> list[ProviderMessage]:
        self._maybe_fail("list_inbound_messages")
        with self._lock:
            self.listings.append(Listing("list_inbound_messages", to, since))
            return [m for m in self.inbound_messages if m.sent_at is None or m.sent_at >= since]

    def list_inbound_calls(self, to: str, since: datetime) -> list[ProviderCall]:
        self._maybe_fail("list_inbound_calls")
        with self._lock:
            self.listings.append(Listing("list_inbound_calls", to, since))
            return [c for c in self.inbound_calls if c.started_at is None or c.started_at >= since]

    def list_recordings(self, since: datetime) -> list[ProviderRecording]:
        self._maybe_fail("list_recordings")
        with self._lock:
            self.listings.append(Listing("list_recordings", None, since))
            return [r for r in self.recordings if r.created_at is None or r.created_at >= since]
