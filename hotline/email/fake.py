"""A recording fake of the e-mail port, for tests that are not about SMTP.

It records every message, hands out Message-IDs, and can be told to fail: the next N sends raise
a given EmailError, a given address always fails, or a given address is refused while the other
recipients accept the message (partial delivery, as :mod:`hotline.email.smtp` reports it).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from email.utils import make_msgid

from hotline.email import EmailError, EmailErrorKind, EmailMessage, SentEmail, check_address


def _key(address: str) -> str:
    return check_address(address).lower()


@dataclass
class FakeEmail:
    #: Messages accepted, in order, and their Message-IDs.
    messages: list[EmailMessage] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    #: Every call to ``send``, failed ones included (an UNKNOWN_OUTCOME may have gone out).
    attempts: list[EmailMessage] = field(default_factory=list)
    _failures: deque[EmailError] = field(default_factory=deque)
    _failing_addresses: dict[str, EmailError] = field(default_factory=dict)
    _refused_addresses: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # Telling it to fail -------------------------------------------------------------------------

    def fail_next(self, error: EmailError, times: int = 1) -> None:
        with self._lock:
            self._failures.extend([error] * times)

    def fail_for(self, address: str, error: EmailError) -> None:
        """Every message with this recipient raises ``error`` (until :meth:`clear_failures`)."""
        with self._lock:
            self._failing_addresses[_key(address)] = error

    def refuse(self, address: str, code: int = 550) -> None:
        """The server refuses this recipient at RCPT TO: the message still goes to the others
        (``SentEmail.refused``); when every recipient is refused, ``send`` raises PERMANENT
        (RETRYABLE for a 4xx code)."""
        with self._lock:
            self._refused_addresses[_key(address)] = code

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()
            self._failing_addresses.clear()
            self._refused_addresses.clear()

    # Looking at what was sent -------------------------------------------------------------------

    def sent_to(self, address: str) -> list[EmailMessage]:
        wanted = _key(address)
        with self._lock:
            return [m for m in self.messages if wanted in {_key(a) for a in m.to}]

    # The port -----------------------------------------------------------------------------------

    def send(self, message: EmailMessage) -> SentEmail:
        with self._lock:
            self.attempts.append(message)
            if self._failures:
                raise self._failures.popleft()
            keys = [_key(a) for a in message.to]
            for key in keys:
                if key in self._failing_addresses:
                    raise self._failing_addresses[key]
            refused = {
                check_address(a): self._refused_addresses[k]
                for a, k in zip(message.to, keys, strict=True)
                if k in self._refused_addresses
            }
            if refused and len(refused) == len(keys):
                codes = refused.values()
                kind = (
                    EmailErrorKind.PERMANENT
                    if all(500 <= c < 600 for c in codes)
                    else EmailErrorKind.RETRYABLE
                )
                raise EmailError(
                    kind,
                    "every recipient refused",
                    smtp_code=next(iter(codes)),
                    refused=refused,
                )
            message_id = make_msgid(domain="hotline.test")
            self.messages.append(message)
            self.message_ids.append(message_id)
        return SentEmail(message_id, refused)
