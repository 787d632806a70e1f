"""How the dispatcher hears of tips: signals sent inside the transaction that changes the tip,
acted on once that transaction commits (a task that runs before the commit would find nothing;
one enqueued for a rolled-back transaction would act on nothing)."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy.orm import Session

from dispatcher.planning import UPDATE_EVERY, notify_new_information
from dispatcher.tasks import PLAN_TIP, SEND
from hotline.db import run_after_commit
from hotline.models import Tip
from hotline.services import hotline
from hotline.tips import tip_created, tip_information_added


@tip_created.connect
def _plan_after_commit(tip_id: int, *, session: Session) -> None:
    if not current_app:
        return  # outside the app (a bare script): the sweep plans it
    jobs = hotline().jobs
    run_after_commit(session, lambda: jobs.enqueue(PLAN_TIP, tip_id))


@tip_information_added.connect
def _tell_endusers_again(
    tip_id: int, *, session: Session, tip: Tip, note: str, now: datetime
) -> None:
    every = hotline().settings.update_every if current_app else UPDATE_EVERY
    due = notify_new_information(session, tip, note=note, now=now, every=every)
    if due and current_app:
        jobs = hotline().jobs

        def enqueue() -> None:
            for notification_id in due:
                jobs.enqueue(SEND, notification_id)

        run_after_commit(session, enqueue)
