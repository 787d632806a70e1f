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
from hotline.core.calls import FINAL_CALL_STATUSES
from hotline.models import (
    LegState,
    Notification,
    NotificationChannel,
    NotificationLeg,
    NotificationOutcome,
    Tip,
    TipEventKind,
)

#: Calls to one person in one round of a leg, the first included.
MAX_CALLS_PER_PERSON_PER_ROUND = 2
#: Calls that ended like this are made again to the same person, after this long.
RETRY_AFTER: dict[NotificationOutcome, timedelta] = {
    NotificationOutcome.NO_ANSWER: timedelta(seconds=60),
    NotificationOutcome.BUSY: timedelta(seconds=30),
    NotificationOutcome.FAILED: timedelta(seconds=60),
    NotificationOutcome.CANCELED: timedelta(seconds=60),
}


#: The outbox row's outcome for each final status of its call (every one has a member).
CALL_OUTCOMES: dict[str, NotificationOutcome] = {
    status: NotificationOutcome(status) for status in FINAL_CALL_STATUSES
}


def outcome_of_call(status: str) -> NotificationOutcome:
    """What a finished alert call's final status makes of its row's outcome."""
    return CALL_OUTCOMES[status]


def is_machine(answered_by: str | None) -> bool:
    return bool(answered_by) and (
        answered_by.startswith("machine") or answered_by == "fax"  # type: ignore[union-attr]
    )


def call_finished(
    session: Session,
    row: Notification,
    status: NotificationOutcome,
    answered_by: str | None,
    now: datetime,
) -> str:
    """Apply the retry policy to a finished alert call (``status``: its final status, as
    :func:`outcome_of_call` names it). Returns what was decided."""
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
                TipEventKind.NOTIFICATION_RETRY_PLANNED,
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
        TipEventKind.LEG_MOVED_ON,
        at=now,
        leg=leg.kind.value,
        after=row.id,
        status=status,
        answered_by=answered_by,
    )
    return "moved-on"
