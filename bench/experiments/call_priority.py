"""Experiment: as :mod:`bench.experiments.calls_first`, and calls (with the plan tasks, which
carry no priority and so get Redis's first one) are published at a higher priority than texts
and e-mails, so a burst's calls overtake the texts and e-mails of the tips planned before them.

    .venv/bin/python bench/dispatch_latency.py --worker-app bench.experiments.call_priority

Celery's Redis transport keeps one list per priority step (0, 3, 6, 9; 0 is served first) and
the worker pops them in that order. Only the Celery worker runs this module.
"""

from __future__ import annotations

from bench.experiments.calls_first import celery_app, flask_app, plan_and_enqueue
from dispatcher import tasks
from hotline.models import NotificationChannel
from hotline.services import Hotline

__all__ = ["celery_app", "flask_app"]

PRIORITY = {NotificationChannel.VOICE: 0, NotificationChannel.SMS: 3, NotificationChannel.EMAIL: 6}


def plan_tip_job(services: Hotline, tip_id: int) -> None:
    def enqueue(notification_id: int, channel: NotificationChannel) -> None:
        celery_app.send_task(
            tasks.SEND, args=[notification_id], priority=PRIORITY[channel], retry=False
        )

    plan_and_enqueue(services, tip_id, enqueue)


tasks.plan_tip_job = plan_tip_job
