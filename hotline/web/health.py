"""GET /healthz for an external monitor: is every part that keeps a tip moving alive?"""

from __future__ import annotations

import logging
from typing import Any

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


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    services = hotline()
    report: dict[str, Any] = {}
    try:
        with services.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # the monitor needs an answer, not a 500 page
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        body = {"ok": False, "database": {"ok": False, "error": type(exc).__name__}}
        return jsonify(body), 503
    report["database"] = {"ok": True}

    try:
        current = migrate.current_revision(services.db.engine)
        head = migrate.head_revision()
        report["migrations"] = {"ok": current == head, "current": current, "head": head}
    except Exception as exc:
        report["migrations"] = {"ok": False, "error": type(exc).__name__}

    try:
        with services.db.sessionmaker() as session:
            ages: dict[str, float | None] = heartbeat_ages(session, services.clock.now())
            details = heartbeat_details(session)
    except Exception as exc:
        log.warning("health check: heartbeats unreadable (%s)", type(exc).__name__)
        ages, details = dict.fromkeys(MONITORED), {}
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
