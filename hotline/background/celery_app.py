"""Celery, wired the way Flask's documentation does it (``celery_init_app``).

Tasks are thin: they take ids and call services. Two heartbeats prove the background is alive:
the worker writes one from a timer inside the worker process (a bootstep), beat writes its own
from its scheduler loop, so /healthz can tell which of the two has stopped.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery, Task, bootsteps
from celery.beat import PersistentScheduler
from celery.signals import worker_process_init
from flask import Flask

from hotline.background import heartbeat, reconcile
from hotline.services import hotline
from hotline.web.webhooks import purge_receipts

log = logging.getLogger(__name__)

RECONCILE_WITH_PROVIDER = "hotline.reconcile_with_provider"
CHECK_STALE_INBOUND_CALLS = "hotline.check_stale_inbound_calls"


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    settings = hotline(app).settings
    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=settings.redis_url or "memory://",
        # Results are not used: the database is the source of truth for every outcome.
        task_ignore_result=True,
        # A task is acknowledged after it ran, so a worker killed mid-task gives it back.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # Keep reconnecting through a long Redis outage rather than exit after 100 tries: beat
        # sends inline meanwhile, and the worker is needed again the moment Redis is back.
        broker_connection_max_retries=None,
        # Enqueueing never blocks a web request for long: the sweep re-drives what failed.
        broker_transport_options={"socket_connect_timeout": 1, "socket_timeout": 5},
        broker_connection_timeout=1,
        beat_scheduler="hotline.background.celery_app:HeartbeatScheduler",
        beat_schedule_filename=str(settings.instance_path / "celerybeat-schedule"),
        beat_schedule={
            "purge-webhook-receipts": {
                "task": "hotline.purge_webhook_receipts",
                "schedule": 3600.0,
            },
            "reconcile-with-provider": {
                "task": RECONCILE_WITH_PROVIDER,
                "schedule": reconcile.RECONCILE_EVERY_SECONDS,
            },
            "check-stale-inbound-calls": {
                "task": CHECK_STALE_INBOUND_CALLS,
                "schedule": reconcile.RECONCILE_EVERY_SECONDS,
            },
        },
        timezone="UTC",
    )
    # Kept in the configuration so the bootstep and the scheduler, which Celery builds itself,
    # can reach the Flask app's services.
    celery_app.conf["hotline_flask_app"] = app
    celery_app.steps["worker"].add(WorkerHeartbeat)

    def fresh_connections_after_fork(**kwargs: object) -> None:
        # A prefork child inherits the parent's pooled database connections (the heartbeat
        # uses them); two processes on one socket read each other's answers. The child drops
        # them, without closing what the parent still uses.
        hotline(app).db.engine.dispose(close=False)

    worker_process_init.connect(fresh_connections_after_fork, weak=False)
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    _register_tasks(celery_app)
    return celery_app


def _register_tasks(celery_app: Celery) -> None:
    @celery_app.task(name="hotline.ping")  # type: ignore[untyped-decorator]
    def ping() -> str:
        """Proves a round trip through the broker (used by tests and operators)."""
        services = hotline()
        with services.db.session() as session:
            heartbeat.record_heartbeat(session, heartbeat.WORKER, services.clock.now(), "ping")
        return "pong"

    from dispatcher import tasks as dispatcher_tasks

    @celery_app.task(name=dispatcher_tasks.PLAN_TIP)  # type: ignore[untyped-decorator]
    def plan_tip(tip_id: int) -> None:
        dispatcher_tasks.plan_tip_job(hotline(), tip_id)

    @celery_app.task(name=dispatcher_tasks.SEND)  # type: ignore[untyped-decorator]
    def send(notification_id: int) -> str:
        return dispatcher_tasks.send_job(hotline(), notification_id)

    @celery_app.task(name=dispatcher_tasks.VOICEMAIL)  # type: ignore[untyped-decorator]
    def voicemail(call_id: int) -> None:
        dispatcher_tasks.voicemail_job(hotline(), call_id)

    @celery_app.task(name=dispatcher_tasks.TELL_COLLEAGUES)  # type: ignore[untyped-decorator]
    def tell_colleagues(leg_id: int, confirmed_row_id: int) -> None:
        dispatcher_tasks.tell_colleagues_job(hotline(), leg_id, confirmed_row_id)

    @celery_app.task(name=dispatcher_tasks.FETCH_MEDIA)  # type: ignore[untyped-decorator]
    def fetch_media(media_id: int) -> None:
        dispatcher_tasks.fetch_media_job(hotline(), media_id)

    @celery_app.task(name=RECONCILE_WITH_PROVIDER)  # type: ignore[untyped-decorator]
    def reconcile_with_provider() -> int:
        return reconcile.reconcile_with_provider(hotline()).total

    @celery_app.task(name=CHECK_STALE_INBOUND_CALLS)  # type: ignore[untyped-decorator]
    def check_stale_inbound_calls() -> int:
        return len(reconcile.check_stale_inbound_calls(hotline()))

    @celery_app.task(name="hotline.purge_webhook_receipts")  # type: ignore[untyped-decorator]
    def purge_webhook_receipts() -> int:
        services = hotline()
        with services.db.session() as session:
            return purge_receipts(session, services.clock.now())


def _write_heartbeat(app: Flask, name: str, detail: str) -> None:
    try:
        services = hotline(app)
        with services.db.session() as session:
            heartbeat.record_heartbeat(session, name, services.clock.now(), detail)
    except Exception:
        log.exception("could not write the %s heartbeat", name)


class WorkerHeartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
    requires = {"celery.worker.components:Timer"}

    def __init__(self, _worker: Any, **kwargs: Any) -> None:
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        self.tref = worker.timer.call_repeatedly(
            heartbeat.INTERVAL_SECONDS, self._beat, (worker,), priority=10
        )
        self._beat(worker)

    def _beat(self, worker: Any) -> None:
        _write_heartbeat(_flask_app_of(worker.app), heartbeat.WORKER, f"celery {worker.hostname}")

    def stop(self, _worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None


#: How often beat sweeps the outbox, and runs the watchdog.
SWEEP_INTERVAL_SECONDS = 2.0
WATCHDOG_INTERVAL_SECONDS = 15.0


class HeartbeatScheduler(PersistentScheduler):  # type: ignore[misc]
    """Celery beat's scheduler, writing the beat heartbeat as it ticks, and running the
    dispatcher's sweep and watchdog itself.

    The sweep runs here, not as a task through Redis, so that a Redis outage does not stop it:
    due rows it cannot hand to the queue it sends from this process (claims keep that from ever
    sending twice), and the watchdog keeps raising alerts.
    """

    _last_beat = 0.0
    _last_sweep = 0.0
    _last_watchdog = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        now = time.monotonic()
        app = _flask_app_of(self.app)
        if now - self._last_beat >= heartbeat.INTERVAL_SECONDS:
            self._last_beat = now
            _write_heartbeat(app, heartbeat.BEAT, "celery beat")
        if now - self._last_sweep >= SWEEP_INTERVAL_SECONDS:
            self._last_sweep = now
            _run_guarded(app, "sweep")
        if now - self._last_watchdog >= WATCHDOG_INTERVAL_SECONDS:
            self._last_watchdog = now
            _run_guarded(app, "watchdog")
        delay: float = super().tick(*args, **kwargs)
        return min(delay, SWEEP_INTERVAL_SECONDS)


def _run_guarded(app: Flask, what: str) -> None:
    from dispatcher import tasks as dispatcher_tasks

    try:
        with app.app_context():
            services = hotline(app)
            if what == "sweep":
                dispatcher_tasks.sweep(services)
            else:
                dispatcher_tasks.watchdog(services)
    except Exception:
        log.exception("dispatcher %s failed; next round in a moment", what)


def _flask_app_of(celery_app: Celery) -> Flask:
    app: Flask = celery_app.conf["hotline_flask_app"]
    return app
