"""What an alert call's outcome means for its leg.

- Pressed 1: the leg is confirmed (dispatcher.confirm); colleagues on a live call of the same leg
  are told, and those whose phone is still ringing hear it when they answer.
- No answer, busy, failed: the same person is called again once after a short wait; after that
  the leg moves on to its next person at once.
- A person who listened without pressing 1, or a voicemail left on a machine: not a confirmation;
  the leg moves on at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatcher.outbox import planned_row, pull_next_forward
from hotline.core import timeline
from hotline.models import (
    LegState,
    Notification,
    NotificationChannel,
    NotificationLeg,
    Tip,
)

#: Calls to one person in one round of a leg, the first included.
MAX_CALLS_PER_PERSON_PER_ROUND = 2
RETRY_AFTER: dict[str, timedelta] = {
    "no-answer": timedelta(seconds=60),
    "busy": timedelta(seconds=30),
    "failed": timedelta(seconds=60),
    "canceled": timedelta(seconds=60),
}


def is_machine(answered_by: str | None) -> bool:
    return bool(answered_by) and (
        answered_by.startswith("machine") or answered_by == "fax"  # type: ignore[union-attr]
    )


def call_finished(
    session: Session, row: Notification, status: str, answered_by: str | None, now: datetime
) -> str:
    """Apply the retry policy to a finished alert call. Returns what was decided."""
    leg = session.get(NotificationLeg, row.leg_id) if row.leg_id else None
    if leg is None or leg.state is not LegState.OPEN:
        return "leg-closed"
    tip = session.get_one(Tip, row.tip_id)
    if status in RETRY_AFTER and not is_machine(answered_by):
        calls = (
            session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(
                    Notification.leg_id == leg.id,
                    Notification.round == row.round,
                    Notification.contact_id == row.contact_id,
                    Notification.channel == NotificationChannel.VOICE,
                )
            )
            or 0
        )
        if calls < MAX_CALLS_PER_PERSON_PER_ROUND:
            retry = planned_row(
                tip,
                channel=NotificationChannel.VOICE,
                contact_id=row.contact_id,
                phone_number_id=row.phone_number_id,
                leg_id=row.leg_id,
                purpose=row.purpose,
                position=row.position,
                round=row.round,
                due_at=now + RETRY_AFTER[status],
                deadline_at=max(row.deadline_at, now + RETRY_AFTER[status]),
                now=now,
            )
            session.add(retry)
            session.flush()
            timeline.record(
                session,
                tip,
                "notification.retry_planned",
                at=now,
                notification_id=retry.id,
                after=row.id,
                status=status,
                due_at=retry.due_at.isoformat(),
            )
            return "retry"
    pull_next_forward(session, row, now)
    timeline.record(
        session,
        tip,
        "leg.moved_on",
        at=now,
        leg=leg.kind.value,
        after=row.id,
        status=status,
        answered_by=answered_by,
    )
    return "moved-on"
