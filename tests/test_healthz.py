from __future__ import annotations

from datetime import timedelta

from flask import Flask

from hotline import heartbeat, migrate
from hotline.clock import ManualClock
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
    beat(app, heartbeat.WORKER, heartbeat.BEAT, heartbeat.WATCHDOG)
    clock.advance(12)
    r = app.test_client().get("/healthz")
    assert r.status_code == 200
    body = r.get_json()
    assert body["ok"] and body["database"]["ok"] and body["migrations"]["ok"]
    assert body["worker"]["age_seconds"] == 12.0 and body["beat"]["age_seconds"] == 12.0
    assert body["watchdog"]["age_seconds"] == 12.0


def test_stale_or_missing_heartbeat_is_unhealthy(app: Flask, clock: ManualClock) -> None:
    beat(app, heartbeat.WORKER)
    clock.advance(timedelta(seconds=heartbeat.STALE_AFTER_SECONDS + 1))
    beat(app, heartbeat.BEAT, heartbeat.WATCHDOG)
    r = app.test_client().get("/healthz")
    assert r.status_code == 503
    body = r.get_json()
    assert body["worker"] == {
        "ok": False,
        "age_seconds": 61.0,
        "stale_after_seconds": heartbeat.STALE_AFTER_SECONDS,
    }
    assert body["beat"]["ok"] is True


def test_pending_migrations_are_unhealthy(make_app: AppFactory) -> None:
    app = make_app(migrated=False)
    migrate.upgrade(hotline(app).db.engine)
    beat(app, heartbeat.WORKER, heartbeat.BEAT, heartbeat.WATCHDOG)
    migrate.downgrade(hotline(app).db.engine, "base")
    r = app.test_client().get("/healthz")
    assert r.status_code == 503
    body = r.get_json()
    assert body["database"]["ok"] and body["migrations"] == {
        "ok": False,
        "current": None,
        "head": migrate.head_revision(),
    }


def test_unreachable_database_is_reported_not_raised(make_app: AppFactory) -> None:
    app = make_app("postgresql://nobody@127.0.0.1:1/none", migrated=False)
    r = app.test_client().get("/healthz")
    assert r.status_code == 503 and r.get_json()["database"]["ok"] is False
