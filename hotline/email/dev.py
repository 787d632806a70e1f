"""The development e-mail adapter: nothing leaves the machine, the dev UI shows what would have.

With ``SMTP_URL`` unset in development, notification e-mails land in a :class:`DevOutbox`: in
memory, thread-safe, keeping the last ``capacity`` messages. A page polls
:meth:`DevOutbox.messages_since` with the cursor it got last time and shows what is new.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import make_msgid

from hotline.core.clock import Clock, SystemClock
from hotline.email import EmailMessage, SentEmail, check_address

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 500


@dataclass(frozen=True)
class StoredEmail:
    #: Position in the outbox, from 1; what cursors count.
    seq: int
    message_id: str
    sent_at: datetime
    sender: str
    message: EmailMessage


class DevOutbox:
    """Implements :class:`hotline.email.EmailSender` by keeping messages for the dev UI."""

    def __init__(
        self,
        *,
        sender: str = "hotline@localhost",
        capacity: int = DEFAULT_CAPACITY,
        clock: Clock | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.sender = sender
        self._domain = check_address(sender, "sender").rpartition("@")[2].strip("[]")
        self._clock: Clock = clock or SystemClock()
        self._messages: deque[StoredEmail] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()

    def send(self, message: EmailMessage) -> SentEmail:
        message_id = make_msgid(domain=self._domain)
        sent_at = self._clock.now().astimezone(UTC)
        with self._lock:
            self._seq += 1
            self._messages.append(
                StoredEmail(
                    seq=self._seq,
                    message_id=message_id,
                    sent_at=sent_at,
                    sender=self.sender,
                    message=message,
                )
            )
        log.info(
            "e-mail %s kept in the development outbox for %d recipient(s) (SMTP_URL is unset)",
            message_id,
            len(message.to),
        )
        return SentEmail(message_id)

    def messages_since(self, cursor: int = 0) -> tuple[list[StoredEmail], int]:
        """Messages after ``cursor`` (oldest first) and the cursor to pass next time.

        Start with 0. A cursor from before a restart (larger than anything this outbox handed
        out) starts over from the beginning; messages pushed out by the capacity are gone.
        """
        with self._lock:
            if cursor > self._seq or cursor < 0:
                cursor = 0
            new = [stored for stored in self._messages if stored.seq > cursor]
            return new, self._seq

    def get(self, message_id: str) -> StoredEmail | None:
        with self._lock:
            for stored in self._messages:
                if stored.message_id == message_id:
                    return stored
        return None

    def clear(self) -> None:
        """Forget every message; cursors keep counting so pages do not show old ones again."""
        with self._lock:
            self._messages.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)
