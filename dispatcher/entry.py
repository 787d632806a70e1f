"""The dispatcher's entry points. The services that change a tip call them, inside the
transaction that changes it, so what a webhook sets off can be read from its code:

- :func:`on_tip_created`: a new tip (its notifications are planned by a task);
- :func:`on_tip_changed`: its level, type or crime flag changed (re-planned from its arrival);
- :func:`on_information_added`: a recording, a follow-up, another text (those already told hear
  of it again, merged).

What they hand to the queue goes once that transaction commits: a task that ran before the
commit would find nothing, one enqueued for a rolled-back transaction would act on nothing.
Outside an app (a bare script) nothing is enqueued; the sweep picks the work up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from flask import current_app
from sqlalchemy.orm import Session

from dispatcher.plan_writer import UPDATE_EVERY, PlanResult, notify_new_information, plan_tip
from dispatcher.tasks import PLAN_TIP, SEND
from hotline.db import run_after_commit
from hotline.models import Tip
from hotline.services import hotline


def on_tip_created(session: Session, tip: Tip) -> None:
    if not current_app:
        return
    jobs, tip_id = hotline().jobs, tip.id
    run_after_commit(session, lambda: jobs.enqueue(PLAN_TIP, tip_id))


def on_tip_changed(session: Session, tip: Tip, now: datetime) -> PlanResult | None:
    result = plan_tip(session, tip.id, now, replan=True)
    _send_after_commit(session, () if result is None else result.due_now)
    return result


def on_information_added(session: Session, tip: Tip, *, note: str, now: datetime) -> None:
    every = hotline().settings.update_every if current_app else UPDATE_EVERY
    _send_after_commit(
        session, notify_new_information(session, tip, note=note, now=now, every=every)
    )


def _send_after_commit(session: Session, due: Sequence[int]) -> None:
    if not due or not current_app:
        return
    jobs, ids = hotline().jobs, list(due)

    def enqueue() -> None:
        for notification_id in ids:
            jobs.enqueue(SEND, notification_id)

    run_after_commit(session, enqueue)
