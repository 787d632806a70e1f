from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from hotline import migrate
from hotline.background import heartbeat
from hotline.core.clock import ManualClock
from hotline.services import hotline
from tests.conftest import AppFactory


def beat(app: Flask, *names: str) -> None:
    services = hotline(app)
    with services.db.session() as s:
        for name in names:
            heartbeat.record_heartbeat(s, name, services.clock.now())


def test_healthy_when_database_migrations_and_heartbeats_are(
    app: Flask, clock: ManualClock
) -> None:
    beat(app, *heartbeat.MONITORED)
    clock.advance(12)
    r = app.test_client().get("/healthz")
    assert r.status_code == 200
    body = r.get_json()
    assert body["ok"]
    assert body["database"]["ok"]
    assert body["migrations"]["ok"]
    assert body["worker"]["age_seconds"] == 12.0
    assert body["beat"]["age_seconds"] == 12.0
    assert body["watchdog"]["age_seconds"] == 12.0


def test_stale_or_missing_heartbeat_is_unhealthy(app: Flask, clock: ManualClock) -> None:
    beat(app, heartbeat.WORKER)
    clock.advance(timedelta(seconds=heartbeat.STALE_AFTER_SECONDS + 1))
    beat(app, heartbeat.BEAT, heartbeat.WATCHDOG, heartbeat.SWEEP)
    r = app.test_client().get("/healthz")
    assert r.status_code == 503
    body = r.get_json()
    assert body["worker"] == {
        "ok": False,
        "age_seconds": 61.0,
        "stale_after_seconds": heartbeat.STALE_AFTER_SECONDS,
        "detail": None,
    }
    assert body["beat"]["ok"] is True


def test_pending_migrations_are_unhealthy(make_app: AppFactory) -> None:
    app = make_app(migrated=False)
    migrate.upgrade(hotline(app).db.engine)
    beat(app, *heartbeat.MONITORED)
    migrate.downgrade(hotline(app).db.engine, "base")
    r = app.test_client().get("/healthz")
    assert r.status_code == 503
    body = r.get_json()
    assert body["database"]["ok"]
    assert body["migrations"] == {
        "ok": False,
        "current": None,
        "head": migrate.head_revision(),
    }


def test_unreachable_database_is_reported_not_raised(make_app: AppFactory) -> None:
    app = make_app("postgresql://nobody@127.0.0.1:1/none", migrated=False)
    r = app.test_client().get("/healthz")
    assert r.status_code == 503
    assert r.get_json()["database"]["ok"] is False


def test_a_sweep_that_keeps_failing_turns_healthz_red_and_says_why(
    app: Flask, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part of the sweep that raises does not stop the other parts, but the sweep heartbeat
    is only written by a whole sweep: a monitor sees it go stale, with the failing part."""
    from dispatcher import outbox, tasks

    services = hotline(app)
    with app.app_context():
        tasks.sweep(services)
    beat(app, heartbeat.WORKER, heartbeat.BEAT, heartbeat.WATCHDOG)
    assert app.test_client().get("/healthz").status_code == 200

    def broken(*args: object) -> object:
        raise RuntimeError("claims table unreadable")

    monkeypatch.setattr(outbox, "release_expired_claims", broken)
    clock.advance(heartbeat.STALE_AFTER_SECONDS + 1)
    beat(app, heartbeat.WORKER, heartbeat.BEAT, heartbeat.WATCHDOG)
    with app.app_context():
        report = tasks.sweep(services)
    assert report.failed == ["release"]
    r = app.test_client().get("/healthz")
    assert r.status_code == 503
    assert r.get_json()["sweep"]["ok"] is False
    assert r.get_json()["sweep"]["detail"] == "failed: release"
