"""The embedded worker: the development default's stand-in for Celery worker and beat.

One daemon thread in the web process does what beat and the worker do in production (periodic
work, heartbeats) and moves the simulated phone network's timers along, so a newcomer needs no
Redis and no second terminal.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from hotline.background import heartbeat, reconcile
from hotline.background.jobs import LocalJobQueue
from hotline.services import hotline
from hotline.web.webhooks import purge_receipts

#: As often as Celery beat runs the same jobs in production.
PURGE_INTERVAL_SECONDS = 3600.0
WATCHDOG_INTERVAL_SECONDS = 15.0

log = logging.getLogger(__name__)


class EmbeddedWorker:
    def __init__(self, app: Flask, *, tick_seconds: float = 0.25) -> None:
        self.app = app
        self.tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_heartbeat = -1e9
        self._last_purge = -1e9
        self._last_watchdog = -1e9
        self._last_reconcile = -1e9

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name="hotline-embedded-worker", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the thread to stop and wait for it; False if it was still in a round after
        ``timeout`` seconds (it is a daemon thread: it ends with the process)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("embedded worker still busy %.0f s after it was asked to stop", timeout)
            return False
        return True

    def run_once(self, monotonic_now: float) -> None:
        """One round of work; public so tests can drive it without a thread."""
        services = hotline(self.app)
        if monotonic_now - self._last_heartbeat >= heartbeat.INTERVAL_SECONDS:
            self._last_heartbeat = monotonic_now
            with services.db.session() as session:
                now = services.clock.now()
                heartbeat.record_heartbeat(session, heartbeat.WORKER, now, "embedded")
                heartbeat.record_heartbeat(session, heartbeat.BEAT, now, "embedded")
        if monotonic_now - self._last_purge >= PURGE_INTERVAL_SECONDS:
            self._last_purge = monotonic_now
            with services.db.session() as session:
                purge_receipts(session, services.clock.now())
        if services.simulator is not None:
            services.simulator.tick()
        # What Celery worker and beat do in production: jobs, the sweep, the watchdog.
        from dispatcher import tasks

        if isinstance(services.jobs, LocalJobQueue):
            services.jobs.drain(lambda name, args: tasks.run_job(services, name, args))
        tasks.sweep(services)
        if isinstance(services.jobs, LocalJobQueue):
            services.jobs.drain(lambda name, args: tasks.run_job(services, name, args))
        if monotonic_now - self._last_watchdog >= WATCHDOG_INTERVAL_SECONDS:
            self._last_watchdog = monotonic_now
            tasks.watchdog(services)
        if monotonic_now - self._last_reconcile >= reconcile.RECONCILE_EVERY_SECONDS:
            # What beat schedules every RECONCILE_EVERY_SECONDS: catching up with the provider.
            self._last_reconcile = monotonic_now
            reconcile.reconcile_with_provider(services)
            reconcile.check_stale_inbound_calls(services)

    def _run(self) -> None:
        import time

        while True:
            try:
                with self.app.app_context():
                    self.run_once(time.monotonic())
            except Exception:
                # Keep going: a hiccup (a locked SQLite file) must not stop the background.
                log.exception("embedded worker round failed")
            if self._stop.wait(self.tick_seconds):
                return
