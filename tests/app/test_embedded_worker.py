from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from hotline.background import heartbeat
from hotline.background.embedded import EmbeddedWorker
from hotline.core.clock import ManualClock
from hotline.models import Heartbeat
from hotline.services import hotline
from tests.support.waiting import wait_until


def test_a_round_writes_the_heartbeats_then_waits_its_interval(
    app: Flask, clock: ManualClock
) -> None:
    worker = EmbeddedWorker(app)
    with app.app_context():
        worker.run_once(monotonic_now=1000.0)
        first = clock.now()
        clock.advance(3)
        worker.run_once(monotonic_now=1003.0)  # too soon: nothing rewritten
    with hotline(app).db.sessionmaker() as s:
        rows = {h.name: h.at for h in s.scalars(select(Heartbeat))}
    assert rows == {
        heartbeat.WORKER: first,
        heartbeat.BEAT: first,
        heartbeat.WATCHDOG: first,
        heartbeat.SWEEP: clock.now(),  # every round sweeps
    }
    with app.app_context():
        worker.run_once(monotonic_now=1000.0 + heartbeat.INTERVAL_SECONDS)
    with hotline(app).db.sessionmaker() as s:
        assert s.get_one(Heartbeat, heartbeat.WORKER).at == clock.now()


def beat_heartbeat(app: Flask) -> Heartbeat | None:
    with hotline(app).db.sessionmaker() as s:
        return s.get(Heartbeat, heartbeat.BEAT)


def test_the_thread_works_until_asked_to_stop(app: Flask) -> None:
    worker = EmbeddedWorker(app, tick_seconds=0.01)
    worker.start()
    try:
        wait_until("the embedded worker's first heartbeat", lambda: beat_heartbeat(app))
    finally:
        assert worker.stop(), "the thread did not end"
    assert worker.stop(), "stopping twice is harmless"


def test_stop_interrupts_the_wait_between_rounds(app: Flask) -> None:
    # A round, then an hour's wait: stop() must wake the thread, not sit the hour out.
    worker = EmbeddedWorker(app, tick_seconds=3600)
    worker.start()
    wait_until("the embedded worker's first heartbeat", lambda: beat_heartbeat(app))
    assert worker.stop(timeout=60), "the thread was still waiting after stop()"
