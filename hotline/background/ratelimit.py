"""The calls-per-second budget, shared by every worker.

Twilio places one outbound call per second per account by default and queues the rest at its
end, where the app can no longer reorder them; carriers also flag a caller id that dials fast.
So the hotline keeps its own budget, counted per one-second window in Redis (every worker sees
the same count), and Critical calls come first: routine calls (drills, updates) may only use
half of it. A limiter that cannot reach Redis lets the call go: a rate limit must never be the
reason a principal was not called.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class CallRateLimiter(Protocol):
    def acquire(self, critical: bool) -> float:
        """Take one call slot: 0 when the call may go now, else the seconds to wait."""
        ...


def routine_share(budget: int, window: int) -> int:
    """Slots routine calls may use in ``window``: half the budget; with a budget of one, every
    other second."""
    if budget >= 2:
        return budget // 2
    return budget if window % 2 == 0 else 0


class _Windowed:
    def __init__(self, budget: int, now: Callable[[], datetime]) -> None:
        if budget < 1:
            raise ValueError("the calls-per-second budget is at least 1")
        self.budget = budget
        self._now = now

    def _decide(self, count: int, window: int, critical: bool, at: float) -> float:
        limit = self.budget if critical else routine_share(self.budget, window)
        if count <= limit:
            return 0.0
        return max(0.001, math.floor(at) + 1 - at)


class LocalRateLimiter(_Windowed):
    """One process (the embedded worker)."""

    def __init__(self, budget: int, now: Callable[[], datetime]) -> None:
        super().__init__(budget, now)
        self._counts: dict[int, int] = {}
        self._lock = threading.Lock()

    def acquire(self, critical: bool) -> float:
        at = self._now().timestamp()
        window = math.floor(at)
        with self._lock:
            self._counts = {w: c for w, c in self._counts.items() if w >= window - 2}
            count = self._counts.get(window, 0) + 1
            wait = self._decide(count, window, critical, at)
            if wait == 0.0:
                self._counts[window] = count
            return wait


class RedisRateLimiter(_Windowed):
    """Every worker process: one counter per second in Redis."""

    def __init__(
        self,
        client: Any,
        budget: int,
        now: Callable[[], datetime],
        prefix: str = "hotline:calls-per-second",
    ) -> None:
        super().__init__(budget, now)
        self.client = client
        self.prefix = prefix

    def acquire(self, critical: bool) -> float:
        at = self._now().timestamp()
        window = math.floor(at)
        key = f"{self.prefix}:{window}"
        try:
            pipe = self.client.pipeline()
            pipe.incr(key)
            pipe.expire(key, 5)
            count = int(pipe.execute()[0])
        except RedisError as exc:
            log.warning("call budget unavailable (%s); letting the call go", type(exc).__name__)
            return 0.0
        wait = self._decide(count, window, critical, at)
        if wait:
            try:
                self.client.decr(key)  # the slot was not used
            except RedisError:
                log.debug("could not give back an unused call slot")
        return wait
