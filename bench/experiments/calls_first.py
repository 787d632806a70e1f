"""Experiment (on top of :mod:`bench.experiments.no_spacing`): the plan task hands its due rows
to the queue calls first (then texts, then e-mails), and marks them as enqueued in the plan's
own transaction, so that beat's sweep does not hand them out a second time while they wait in
the queue.

    .venv/bin/python bench/dispatch_latency.py --worker-app bench.experiments.calls_first

Only the Celery worker runs this module (gunicorn and beat are unchanged); production code is
not modified. See bench/README.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update

from bench.experiments.no_spacing import celery_app, flask_app
from dispatcher import tasks
from dispatcher.plan_writer import plan_tip
from hotline.models import Notification, NotificationChannel
from hotline.services import Hotline

__all__ = ["celery_app", "flask_app"]

#: Calls first: they are what the deadline is about and take longest to be answered.
CHANNEL_ORDER = {
    NotificationChannel.VOICE: 0,
    NotificationChannel.SMS: 1,
    NotificationChannel.EMAIL: 2,
}


def plan_and_enqueue(
    services: Hotline,
    tip_id: int,
    enqueue: Callable[[int, NotificationChannel], None],
) -> None:
    with services.db.session() as session:
        now = services.clock.now()
        result = plan_tip(session, tip_id, now)
        if result is None or not result.due_now:
            return
        due = list(
            session.execute(
                select(Notification.id, Notification.channel).where(
                    Notification.id.in_(result.due_now)
                )
            ).tuples()
        )
        # Handed to the queue now: the sweep leaves them alone for REENQUEUE_AFTER. (A
        # microsecond before the plan's time, so the benchmark can tell this mark from the
        # sweep's, which is the plan's time when the sweep planned, and later otherwise.)
        session.execute(
            update(Notification)
            .where(Notification.id.in_(result.due_now))
            .values(enqueued_at=now - timedelta(microseconds=1))
            .execution_options(synchronize_session=False)
        )
    for notification_id, channel in sorted(due, key=lambda r: (CHANNEL_ORDER[r[1]], r[0])):
        enqueue(notification_id, channel)


def plan_tip_job(services: Hotline, tip_id: int) -> None:
    plan_and_enqueue(services, tip_id, lambda nid, _: services.jobs.enqueue(tasks.SEND, nid))


# hotline.background.celery_app's task looks the job up on the module each time it runs.
tasks.plan_tip_job = plan_tip_job
