"""GET /healthz for an external monitor: is every part that keeps a tip moving alive?"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from hotline import migrate
from hotline.background.heartbeat import (
    MONITORED,
    STALE_AFTER_SECONDS,
    heartbeat_ages,
    heartbeat_details,
)
from hotline.services import hotline

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)
T = TypeVar("T")


class _ProbeFailed:
    """A probe that raised: what the monitor is told instead of a 500 page."""

    def __init__(self, exc: Exception) -> None:
        self.error = type(exc).__name__


def _probe(part: str, check: Callable[[], T]) -> T | _ProbeFailed:
    """The health endpoint's one boundary: a part that fails in any way is reported unhealthy
    by name, because the monitor needs an answer whatever broke."""
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - every failure is a finding, not a crash
        log.warning("health check: %s failed (%s)", part, type(exc).__name__)
        return _ProbeFailed(exc)


def _database_answers() -> None:
    with hotline().db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _migrations() -> dict[str, Any]:
    engine = hotline().db.engine
    current, head = migrate.current_revision(engine), migrate.head_revision()
    return {"ok": current == head, "current": current, "head": head}


def _heartbeats() -> tuple[dict[str, float | None], dict[str, str | None]]:
    services = hotline()
    with services.db.sessionmaker() as session:
        return heartbeat_ages(session, services.clock.now()), heartbeat_details(session)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    database = _probe("database", _database_answers)
    if isinstance(database, _ProbeFailed):
        return jsonify({"ok": False, "database": {"ok": False, "error": database.error}}), 503
    report: dict[str, Any] = {"database": {"ok": True}}

    migrations = _probe("migrations", _migrations)
    report["migrations"] = (
        {"ok": False, "error": migrations.error}
        if isinstance(migrations, _ProbeFailed)
        else migrations
    )

    heartbeats = _probe("heartbeats", _heartbeats)
    ages, details = (
        (dict.fromkeys(MONITORED), {}) if isinstance(heartbeats, _ProbeFailed) else heartbeats
    )
    for name, age in ages.items():
        report[name] = {
            "ok": age is not None and age <= STALE_AFTER_SECONDS,
            "age_seconds": None if age is None else round(age, 1),
            "stale_after_seconds": STALE_AFTER_SECONDS,
            # The sweep's last failure, say (a heartbeat that stopped says why).
            "detail": details.get(name),
        }
    report["ok"] = all(part["ok"] for part in report.values())
    return jsonify(report), 200 if report["ok"] else 503
