"""What the simulated network shows the dev phone, trainers and tests: its public record types
(events, calls, texts, recordings, webhook deliveries) and the error an impossible handset action
raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class HandsetError(RuntimeError):
    """A handset action that cannot happen (unknown or finished call, nothing listening...)."""


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
    #: While a <Gather> or <Record> listens: when it gives up on the caller, and the seconds it
    #: was given (its timeout times the network's patience).
    listen_until: datetime | None = None
    listen_seconds: float | None = None


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
class SimText:
    """One text of a handset's conversation with the network, as the dev phone shows it."""

    sid: str
    at: datetime
    #: "from-handset" (the handset sent it) or "to-handset".
    direction: str
    #: Who wrote it: "handset", "hotline" (the app: a <Message> answer or its REST API) or
    #: "network" (the carrier's own answer to STOP, START or HELP, as Twilio gives it).
    sender: str
    body: str
    media: tuple[SimMedia, ...]
    #: "received" for the handset's texts; queued, sent, delivered, undelivered or failed for
    #: the hotline's; delivered for the network's.
    status: str
    #: Twilio's error code and its meaning: why a text of the hotline's was undelivered or
    #: failed, or why the app's answer to a handset's text went nowhere.
    error_code: str | None = None
    error: str | None = None
    #: The hotline's texts: "reply" (the TwiML answer to the text ``reply_to``) or "api".
    via: str | None = None
    reply_to: str | None = None
    #: The handset's texts: STOP, START or HELP when the network took it as that keyword.
    keyword: str | None = None


@dataclass(frozen=True)
class SimConversation:
    """A handset's texts with the network, oldest first, and whether it can receive them."""

    handset: str
    opted_out: bool
    reachable: bool
    texts: tuple[SimText, ...]


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
