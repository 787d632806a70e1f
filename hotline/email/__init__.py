"""The e-mail port: everything the hotline asks of a mail system.

The rest of the code imports only this module. Adapters: :mod:`hotline.email.smtp` (production,
``SMTP_URL``), :mod:`hotline.email.dev` (development: an in-memory outbox the dev UI shows) and
:mod:`hotline.email.fake` (unit tests: records messages, can be told to fail). What the
notification e-mails say is :mod:`hotline.email.tip_email`.

Partial delivery. SMTP can accept a message for some recipients and refuse others. ``send``
then returns normally (the message *was* accepted and must not be sent again to those who got
it) and the returned :class:`SentEmail` (the Message-ID, a ``str``) lists the refused addresses in
``refused``. The hotline sends one message per contact, so in practice a refusal is all-or-nothing
and arrives as an :class:`EmailError`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import getaddresses
from types import MappingProxyType
from typing import Protocol


class EmailErrorKind(enum.Enum):
    #: Surely not accepted: connection refused, name not resolved, connect timeout, a 4xx reply
    #: before the message content was accepted. Safe to retry with backoff.
    RETRYABLE = "retryable"
    #: The message content was sent but no final answer came back (timeout, disconnect after
    #: DATA): it may have been accepted. Never re-send blindly.
    UNKNOWN_OUTCOME = "unknown_outcome"
    #: The recipient address can never be reached (5xx to RCPT TO: no such user, bad domain).
    #: Mark the address and move on.
    PERMANENT = "permanent"
    #: The server refused *us*, not the recipient: authentication failed, TLS unavailable where
    #: credentials need it, sender refused, the message refused as a whole (5xx after DATA).
    #: A misconfiguration or a policy problem: not retried, surfaced loudly, and no contact's
    #: address is blamed for it.
    REJECTED = "rejected"


class EmailError(Exception):
    def __init__(
        self,
        kind: EmailErrorKind,
        message: str,
        *,
        smtp_code: int | None = None,
        refused: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.smtp_code = smtp_code
        #: Recipient address → SMTP reply code, for recipients the server refused.
        self.refused_codes: Mapping[str, int] = MappingProxyType(dict(refused or {}))

    @property
    def refused(self) -> tuple[str, ...]:
        """The recipient addresses the server refused (empty unless RCPT TO was refused)."""
        return tuple(self.refused_codes)

    def __repr__(self) -> str:
        return (
            f"EmailError({self.kind.value}, smtp_code={self.smtp_code}, "
            f"refused={self.refused!r}, {self.args[0]!r})"
        )


class SentEmail(str):
    """What ``send`` returns: the Message-ID (it *is* the string, ``<...@domain>``), plus the
    recipients refused while others accepted the message (partial delivery, see module doc)."""

    refused_codes: Mapping[str, int]

    def __new__(cls, message_id: str, refused: Mapping[str, int] | None = None) -> SentEmail:
        self = super().__new__(cls, message_id)
        self.refused_codes = MappingProxyType(dict(refused or {}))
        return self

    @property
    def message_id(self) -> str:
        return str(self)

    @property
    def refused(self) -> tuple[str, ...]:
        return tuple(self.refused_codes)


#: Characters that end a header line somewhere (``str.splitlines`` and the email package treat
#: more than CR and LF as line breaks). Any of them in a subject or address is header injection.
_LINE_BREAKS = frozenset("\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")

#: Headers the adapter sets itself; a message may not override them.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "reply-to",
        "message-id",
        "date",
        "sender",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "return-path",
    }
)


def has_line_break(value: str) -> bool:
    return any(ch in _LINE_BREAKS for ch in value)


def check_address(address: str, what: str = "address") -> str:
    """One mailbox (``a@b.org`` or ``Name <a@b.org>``), no line breaks. Returns the bare
    addr-spec (``Name <a@b.org>`` → ``a@b.org``); raises ValueError otherwise."""
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"{what} is empty")
    if has_line_break(address):
        raise ValueError(f"{what} contains a line break (header injection refused)")
    parsed = getaddresses([address])
    if len(parsed) != 1:
        raise ValueError(f"{what} must be exactly one mailbox, not {address!r}")
    addr = parsed[0][1]
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or any(ch.isspace() for ch in addr):
        raise ValueError(f"{what} is not an e-mail address: {address!r}")
    return addr


@dataclass(frozen=True)
class EmailMessage:
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None
    #: Extra headers (``Auto-Submitted``, ``List-Id``...); never those in RESERVED_HEADERS.
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if isinstance(self.to, str):
            raise ValueError("to is a tuple of addresses, not one string")
        to = tuple(self.to)
        if not to:
            raise ValueError("an e-mail needs at least one recipient")
        for n, address in enumerate(to, 1):
            check_address(address, f"recipient {n}")
        object.__setattr__(self, "to", to)
        if has_line_break(self.subject):
            raise ValueError("the subject contains a line break (header injection refused)")
        if self.reply_to is not None:
            check_address(self.reply_to, "reply_to")
        headers = dict(self.headers)
        for name, value in headers.items():
            if not name or not all(33 <= ord(ch) <= 126 and ch != ":" for ch in name):
                raise ValueError(f"invalid header name {name!r}")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by the sender, not by the message")
            if has_line_break(value):
                raise ValueError(f"header {name!r} contains a line break (injection refused)")
        object.__setattr__(self, "headers", MappingProxyType(headers))


class EmailSender(Protocol):
    """What the hotline needs from a mail system. ``send`` may raise EmailError."""

    def send(self, message: EmailMessage) -> SentEmail:
        """Hand the message over; returns its Message-ID (with any partial refusals)."""
        ...


__all__ = [
    "RESERVED_HEADERS",
    "EmailError",
    "EmailErrorKind",
    "EmailMessage",
    "EmailSender",
    "SentEmail",
    "check_address",
    "has_line_break",
]
