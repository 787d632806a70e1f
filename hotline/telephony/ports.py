"""The telephony port: everything the hotline asks of a phone network.

The rest of the code imports only this module. Adapters: :mod:`hotline.telephony.twilio_adapter`
(production), :mod:`hotline.telephony.simulated` (development and training) and
:mod:`hotline.telephony.fake` (unit tests: records requests, can be told to fail).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class TelephonyErrorKind(enum.Enum):
    #: Surely not processed by the provider (HTTP 429 / Twilio 20429, connection refused before
    #: the request was sent): safe to retry with backoff.
    RETRYABLE = "retryable"
    #: The request may or may not have gone through (timeout after sending, 5xx). Never re-send
    #: blindly: a second alert call to a principal is better decided by the escalation policy.
    UNKNOWN_OUTCOME = "unknown_outcome"
    #: The number can never be reached this way (invalid, unreachable, opted out, landline for
    #: SMS). Mark the phone number and move on.
    PERMANENT_NUMBER = "permanent_number"
    #: Anything else the provider refused (bad request, authentication): a bug or a
    #: misconfiguration; not retried, surfaced loudly.
    REJECTED = "rejected"


#: Twilio error codes that say "this number cannot be reached this way", never worth retrying.
PERMANENT_NUMBER_CODES: frozenset[int] = frozenset({21211, 21214, 21217, 21610, 21612, 21614})
#: Twilio error codes that say "slow down, nothing was done".
RETRYABLE_CODES: frozenset[int] = frozenset({20429})


class TelephonyError(Exception):
    def __init__(
        self,
        kind: TelephonyErrorKind,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.http_status = http_status

    def __repr__(self) -> str:
        return (
            f"TelephonyError({self.kind.value}, code={self.code}, "
            f"http_status={self.http_status}, {self.args[0]!r})"
        )


@dataclass(frozen=True)
class CallRequest:
    """An outbound call. Exactly one of ``url`` and ``twiml`` says what the callee hears."""

    to: str
    from_: str
    url: str | None = None
    twiml: str | None = None
    status_callback: str | None = None
    status_callback_events: Sequence[str] = ("initiated", "ringing", "answered", "completed")
    #: ``DetectMessageEnd`` or ``Enable``; None for no answering-machine detection.
    machine_detection: str | None = None
    async_amd: bool = False
    async_amd_status_callback: str | None = None
    #: Seconds to let the phone ring before giving up (Twilio: 5..600, default 60).
    ring_timeout: int | None = None
    #: Longest the call may last, in seconds.
    time_limit: int | None = None
    #: DTMF digits to send once the line answers (an extension), ``w`` waits half a second.
    send_digits: str | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (self.twiml is None):
            raise ValueError("a call needs exactly one of url and twiml")


@dataclass(frozen=True)
class PlacedCall:
    sid: str
    status: str


@dataclass(frozen=True)
class CallUpdate:
    """A change to a live call: new instructions, or ending it (``status='completed'``)."""

    twiml: str | None = None
    url: str | None = None
    status: str | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.twiml, self.url, self.status)) != 1:
            raise ValueError("a call update is exactly one of twiml, url, status")


@dataclass(frozen=True)
class SmsRequest:
    to: str
    from_: str
    body: str = ""
    media_urls: Sequence[str] = field(default_factory=tuple)
    status_callback: str | None = None

    def __post_init__(self) -> None:
        if not self.body and not self.media_urls:
            raise ValueError("a message needs a body or media")
        if len(self.body) > 1600:
            raise ValueError("a message body is at most 1600 characters")


@dataclass(frozen=True)
class SentMessage:
    sid: str
    status: str


@dataclass(frozen=True)
class FetchedMedia:
    content: bytes
    content_type: str


@dataclass(frozen=True)
class ProviderMessage:
    """An incoming text as the provider's message log holds it."""

    sid: str
    #: As the provider gives it; only ever passed to :mod:`hotline.core.reporters`.
    from_: str
    body: str
    sent_at: datetime | None
    num_media: int = 0


@dataclass(frozen=True)
class ProviderCall:
    """An incoming call as the provider's call log holds it."""

    sid: str
    from_: str
    status: str
    started_at: datetime | None
    duration_seconds: int | None = None


@dataclass(frozen=True)
class ProviderRecording:
    sid: str
    call_sid: str | None
    #: The media URL a ``<Record>`` action would carry (without extension).
    url: str
    status: str
    created_at: datetime | None
    duration_seconds: int | None = None


#: The most items one listing returns (paging included): more is not an outage but a flood.
MAX_LISTED = 1000


class Telephony(Protocol):
    """What the hotline needs from a phone network. Every method may raise TelephonyError."""

    def place_call(self, request: CallRequest) -> PlacedCall: ...

    def update_call(self, call_sid: str, update: CallUpdate) -> None: ...

    def fetch_call_status(self, call_sid: str) -> str: ...

    def send_sms(self, request: SmsRequest) -> SentMessage: ...

    def fetch_media(self, url: str) -> FetchedMedia:
        """Download a recording or MMS picture (Twilio may ask for the account's basic auth)."""
        ...

    def delete_recording(self, recording_sid: str) -> None: ...

    def delete_media(self, url: str) -> None:
        """Delete an MMS picture at the provider once the hotline keeps its own copy."""
        ...

    def list_inbound_messages(self, to: str, since: datetime) -> list[ProviderMessage]:
        """Texts received on ``to`` since ``since`` (every page, at most MAX_LISTED)."""
        ...

    def list_inbound_calls(self, to: str, since: datetime) -> list[ProviderCall]:
        """Calls received on ``to`` that started since ``since``."""
        ...

    def list_recordings(self, since: datetime) -> list[ProviderRecording]:
        """The account's recordings created since ``since``."""
        ...
