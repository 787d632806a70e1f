"""The dispatcher's jobs, thin: they take ids and call services. Shared by the Celery tasks, the
embedded worker and the tests."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

from sqlalchemy import select

from dispatcher import outbox
from dispatcher.planning import plan_tip, raise_alert
from dispatcher.sender import send_notification
from dispatcher.watchdog import run_watchdog
from hotline import heartbeat
from hotline.models import Notification, Tip
from hotline.services import Hotline

log = logging.getLogger(__name__)

PLAN_TIP = "dispatcher.plan_tip"
SEND = "dispatcher.send"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def plan_tip_job(services: Hotline, tip_id: int) -> None:
    with services.db.session() as session:
        result = plan_tip(session, tip_id, services.clock.now())
    if result is not None:
        for notification_id in result.due_now:
            services.jobs.enqueue(SEND, notification_id)


def send_job(services: Hotline, notification_id: int) -> str:
    return send_notification(services, notification_id, worker_name())


def run_job(services: Hotline, name: str, args: tuple[int, ...]) -> None:
    if name == PLAN_TIP:
        plan_tip_job(services, *args)
    elif name == SEND:
        send_job(services, *args)
    else:
        log.error("unknown job %s", name)


@dataclass
class SweepReport:
    planned_tips: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    enqueued: list[int] = field(default_factory=list)
    sent_inline: list[int] = field(default_factory=list)


def sweep(services: Hotline) -> SweepReport:
    """Re-drive everything the database says is due: tips never planned (a lost enqueue), claims
    whose worker vanished, due rows. When the queue cannot take a row, send it from here."""
    report = SweepReport()
    now = services.clock.now()
    with services.db.session() as session:
        unplanned = list(
            session.scalars(select(Tip.id).where(Tip.plan_version == 0).order_by(Tip.id).limit(50))
        )
        for tip_id in unplanned:
            if plan_tip(session, tip_id, now) is not None:
                report.planned_tips.append(tip_id)
    with services.db.session() as session:
        report.released, report.unknown = outbox.release_expired_claims(session, now)
        for notification_id in report.unknown:
            row = session.get_one(Notification, notification_id)
            tip = session.get_one(Tip, row.tip_id)
            raise_alert(
                session,
                tip=tip,
                kind="notification_unknown",
                message=f"Report {tip.report_number}: a worker stopped while sending a "
                f"{row.channel.value} to contact {row.contact_id}; it may not have "
                "gone out.",
                key=f"unknown:{row.id}",
                now=now,
            )
    with services.db.session() as session:
        due = outbox.due_ids(session, now)
        outbox.mark_enqueued(session, due, now)
    for notification_id in due:
        if services.jobs.enqueue_now(SEND, notification_id):
            report.enqueued.append(notification_id)
        else:
            send_job(services, notification_id)
            report.sent_inline.append(notification_id)
    return report


def watchdog(services: Hotline) -> dict[str, int]:
    with services.db.session() as session:
        counts = run_watchdog(session, services.clock.now())
        heartbeat.record_heartbeat(session, heartbeat.WATCHDOG, services.clock.now())
    return counts
