"""The simulator's timer queue and moving time on: every timeout of a call (ring, time limit,
machine detection, and whatever its current wait is) is a timer on the injected clock.

The timeouts of a <Gather> and of a <Record>'s silence, the ones that wait for the caller, are
stretched by the network's patience (:attr:`SimState.patience`, 1 unless the dev phone's "patient
caller" switch is on): a person reading each prompt on the page needs longer than one hearing it.
Nothing else is (pauses, rings, time limits, maxLength are the hotline's own timing).

A timer fires at its own due time, so a chain of timeouts that all fell due while the clock jumped
(``ManualClock.advance``) plays out in one ``tick()`` exactly as it would have in real time.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from hotline.telephony.simulated.lanes import Lanes
from hotline.telephony.simulated.state import CallState, SimState, Wait

#: ring: nobody answered an outbound call; time_limit: the call's TimeLimit; amd: the machine
#: detection verdict is ready; wait: the current wait (pause, gather, record, dial) timed out.
TimerKind = Literal["ring", "time_limit", "amd", "wait"]


@dataclass(order=True)
class Timer:
    due: datetime
    seq: int
    call_sid: str = field(compare=False)
    kind: TimerKind = field(compare=False)
    #: For a "wait" timer: the call's wait_token when it was armed (stale once it changed).
    token: int = field(compare=False, default=0)


class Timers:
    """The queue of timers, guarded by the shared state's lock."""

    def __init__(self, state: SimState, lanes: Lanes) -> None:
        self._state = state
        self._lanes = lanes
        self._heap: list[Timer] = []
        self._seq = itertools.count()

    def arm_locked(self, call: CallState, due: datetime, kind: TimerKind, token: int = 0) -> None:
        heapq.heappush(self._heap, Timer(due, next(self._seq), call.sid, kind, token))

    def set_wait_locked(self, call: CallState, wait: Wait | None) -> None:
        """What the call waits for now; any timer armed for the previous wait goes stale."""
        call.wait = wait
        call.wait_token += 1
        call.wait_due = None
        call.listen_seconds = None

    def arm_wait_locked(self, call: CallState, due: datetime) -> None:
        """(Re)arm the timer of the current wait; an earlier one for it goes stale."""
        call.wait_token += 1
        call.wait_due = due
        call.listen_seconds = None
        self.arm_locked(call, due, "wait", call.wait_token)

    def arm_listening_locked(self, call: CallState, at: datetime, seconds: float) -> None:
        """(Re)arm a <Gather> or <Record> waiting for the caller: ``seconds`` (its TwiML's
        timeout) stretched by the network's patience."""
        given = seconds * self._state.patience
        self.arm_wait_locked(call, at + timedelta(seconds=given))
        call.listen_seconds = given

    def run_due(self, fire_locked: Callable[[Timer], None], *, max_timers: int) -> int:
        """Run queued work and every timer due at ``clock.now()``; returns timers fired.

        Called without the lock; ``fire_locked`` runs with it held, one timer at a time."""
        self._lanes.drain()
        now = self._state.clock.now()
        fired = 0
        while fired < max_timers:
            with self._state.lock:
                if not self._heap or self._heap[0].due > now:
                    break
                timer = heapq.heappop(self._heap)
                fire_locked(timer)
            fired += 1
            # Run what the timer started before looking again: its answer may arm the next
            # timer, already due if the clock jumped ahead.
            self._lanes.drain()
        return fired
