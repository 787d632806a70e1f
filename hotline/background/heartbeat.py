"""Signs of life of the background processes, read by /healthz and an external monitor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.models import Heartbeat

WORKER = "worker"
BEAT = "beat"
#: The dispatcher's watchdog, which runs on beat (or the embedded worker).
WATCHDOG = "watchdog"
#: The dispatcher's sweep: written only when a sweep ran whole (every part without an error).
SWEEP = "sweep"
#: What /healthz reports on.
MONITORED = (WORKER, BEAT, WATCHDOG, SWEEP)
#: A heartbeat older than this means the process is gone or stuck.
STALE_AFTER_SECONDS = 60.0
#: How often the processes write theirs.
INTERVAL_SECONDS = 10.0


def record_heartbeat(session: Session, name: str, at: datetime, detail: str | None = None) -> None:
    row = session.get(Heartbeat, name)
    if row is None:
        session.add(Heartbeat(name=name, at=at, detail=detail))
    else:
        row.at = at
        row.detail = detail


def record_failure(session: Session, name: str, detail: str) -> None:
    """Say what went wrong without refreshing the heartbeat: it goes stale unless a later run
    succeeds."""
    row = session.get(Heartbeat, name)
    if row is not None:
        row.detail = detail[:200]


def heartbeat_details(session: Session) -> dict[str, str | None]:
    return {row.name: row.detail for row in session.scalars(select(Heartbeat))}


def heartbeat_ages(session: Session, now: datetime) -> dict[str, float | None]:
    """Seconds since each known process last reported (None: never)."""
    rows = {row.name: row.at for row in session.scalars(select(Heartbeat))}
    return {
        name: (None if name not in rows else max(0.0, (now - rows[name]).total_seconds()))
        for name in MONITORED
    }
