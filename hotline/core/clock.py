"""The one source of time for the hotline.

Every deadline, timeline entry and heartbeat reads the time through a :class:`Clock`, so tests can
run an escalation that spans twenty minutes in milliseconds and so no database ``now()`` ever
feeds a deadline.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        if delta < timedelta(0):
            raise ValueError("time does not run backwards")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("ManualClock needs timezone-aware times")
        with self._lock:
            self._now = when.astimezone(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Refuse naive datetimes: a naive time is a bug waiting for a DST change."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value!r}: times must be timezone-aware")
    return value.astimezone(UTC)


class FileClock:
    """Time read from a file holding an ISO 8601 instant: lets a test move the clock of worker
    processes it started (HOTLINE_CLOCK_FILE), as ManualClock does in-process. Refused by the
    configuration with real Twilio."""

    def __init__(self, path: str) -> None:
        self.path = path

    def now(self) -> datetime:
        with open(self.path, encoding="ascii") as fh:
            return ensure_utc(datetime.fromisoformat(fh.read().strip()))

    def set(self, when: datetime) -> None:
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(ensure_utc(when).isoformat())
        import os

        os.replace(tmp, self.path)  # atomic: a reader never sees half a timestamp
