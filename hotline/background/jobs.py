"""The task queue behind a small port, so services enqueue work without knowing Celery.

A web request must never wait on Redis: :class:`CeleryJobQueue` hands jobs to a background
thread that publishes them; if Redis is down the job is dropped with a log line and the periodic
sweep, which reads the database (the source of truth), re-drives it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    def enqueue(self, name: str, *args: int) -> None:
        """Hand a job over without waiting (fire and forget; the sweep covers losses)."""
        ...

    def enqueue_now(self, name: str, *args: int) -> bool:
        """Hand a job over and say whether that worked (the sweep then knows to do it itself)."""
        ...


class CeleryJobQueue:
    #: After a failed publish, report failure at once for this long instead of trying again: a
    #: broker that is down costs seconds per attempt, and the sweep must not pay that per row.
    BROKER_DOWN_FOR_SECONDS = 10.0

    def __init__(
        self,
        celery_app: Any,
        *,
        capacity: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._celery = celery_app
        self._pending: queue.Queue[tuple[str, tuple[int, ...]]] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._down_until = 0.0

    def enqueue(self, name: str, *args: int) -> None:
        self._ensure_thread()
        try:
            self._pending.put_nowait((name, args))
        except queue.Full:
            log.warning("job queue full; %s left to the sweep", name)

    def enqueue_now(self, name: str, *args: int) -> bool:
        if self._monotonic() < self._down_until:
            return False
        try:
            # No publish retries: the caller (the sweep) sends the row itself instead.
            self._celery.send_task(name, args=list(args), retry=False)
            return True
        # Any failure to publish (kombu, redis, socket, a misconfigured broker URL) has one
        # answer: the row stays in the database and the sweep drives it, so catch them all here.
        except Exception as exc:  # noqa: BLE001 - the publisher's one boundary
            self._down_until = self._monotonic() + self.BROKER_DOWN_FOR_SECONDS
            log.warning(
                "could not enqueue %s (%s); the sweep will re-drive it", name, type(exc).__name__
            )
            return False

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._publish, daemon=True, name="hotline-job-publisher"
                )
                self._thread.start()

    def _publish(self) -> None:
        while True:
            name, args = self._pending.get()
            self.enqueue_now(name, *args)


class LocalJobQueue:
    """The embedded worker's queue: jobs run in its thread, in order."""

    def __init__(self) -> None:
        self._pending: queue.Queue[tuple[str, tuple[int, ...]]] = queue.Queue()

    def enqueue(self, name: str, *args: int) -> None:
        self._pending.put((name, args))

    def enqueue_now(self, name: str, *args: int) -> bool:
        self.enqueue(name, *args)
        return True

    def drain(self, run: Callable[[str, tuple[int, ...]], None], limit: int = 1000) -> int:
        done = 0
        while done < limit:
            try:
                name, args = self._pending.get_nowait()
            except queue.Empty:
                return done
            run(name, args)
            done += 1
        return done


class RecordingJobQueue:
    """For tests: remembers what was enqueued; ``fail`` makes enqueue_now report failure."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, tuple[int, ...]]] = []
        self.fail = False

    def enqueue(self, name: str, *args: int) -> None:
        if not self.fail:
            self.jobs.append((name, args))

    def enqueue_now(self, name: str, *args: int) -> bool:
        if self.fail:
            return False
        self.jobs.append((name, args))
        return True

    def take(self) -> list[tuple[str, tuple[int, ...]]]:
        jobs, self.jobs = self.jobs, []
        return jobs
