"""The simulator's job queue: work that posts webhooks, queued in lanes under the lock and run
outside it by whichever thread drives the network, one job at a time per lane.

A call's TwiML has its own lane (Twilio never fetches a call's next document before the previous
answer came back); its status and recording callbacks, each inbound text and each outbound text
have theirs, so none of them waits for another.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from hotline.telephony.simulated.state import SimState

log = logging.getLogger(__name__)

#: How long a handset action waits for its call's lane before it gives up with a warning.
SETTLE_TIMEOUT_SECONDS = 30.0


@dataclass
class Job:
    lane: str
    run: Callable[[], None]


class Lanes:
    """Jobs in lanes. The queue and the busy lanes are guarded by the shared state's lock."""

    def __init__(self, state: SimState) -> None:
        self._lock = state.lock
        self._jobs: deque[Job] = deque()
        #: lane → the thread running its job right now
        self._busy: dict[str, int] = {}
        self._changed = threading.Condition(state.lock)

    def enqueue_locked(self, lane: str, run: Callable[[], None]) -> None:
        self._jobs.append(Job(lane, run))

    def drain(self) -> None:
        """Run queued jobs until none is runnable. A lane busy in another thread (or further up
        this thread's stack) is left to whoever runs it: it picks its next job when done.
        Called without the lock."""
        while True:
            with self._lock:
                job = next((j for j in self._jobs if j.lane not in self._busy), None)
                if job is None:
                    return
                self._jobs.remove(job)
                self._busy[job.lane] = threading.get_ident()
            try:
                job.run()
            except Exception:
                # A simulator bug must not wedge the lane or kill the dev server's tick thread.
                log.exception("sim: job on lane %s failed", job.lane)
            finally:
                with self._lock:
                    self._busy.pop(job.lane, None)
                    self._changed.notify_all()

    def settle(self, lane: str, timeout: float = SETTLE_TIMEOUT_SECONDS) -> None:
        """Wait until nothing of ``lane`` is queued or running. Another thread's drain may be
        running this call's TwiML: a handset action is over when the hotline has answered it,
        as for a person (a key pressed before the prompt would otherwise be lost).
        Called without the lock."""
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                owner = self._busy.get(lane)
                if owner == threading.get_ident():
                    return  # called from within this lane's own job: nothing to wait for
                queued = any(j.lane == lane for j in self._jobs)
                if owner is None and not queued:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.warning("sim: lane %s still busy after %.0f s", lane, timeout)
                    return
                if owner is not None:
                    self._changed.wait(remaining)
                    continue
            # Queued and nobody running it (queued by the app without draining): run it here,
            # outside the lock, as every job runs.
            self.drain()
