"""The outbox: planned notifications as rows, claimed by workers, never lost, never sent twice.

A row moves PLANNED → CLAIMED → SENDING → SENT | UNKNOWN | FAILED (or CANCELLED while pending).
Each step commits before the next begins:

- CLAIMED says a worker took the row; nothing has left yet. A worker that dies here leaves a
  lease that expires, and the row goes back to PLANNED: re-sending is safe.
- SENDING is committed just before the request to the provider. A worker that dies after it
  leaves a row whose fate is unknown: it becomes UNKNOWN, is never re-sent blindly, and the
  escalation (the next person on the leg, the watchdog) covers the gap.

Claims use ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL so workers never wait on each other,
and a conditional ``UPDATE … WHERE state = 'planned'`` everywhere, which is what makes a claim
exclusive on SQLite (whose writers are serialised anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, case, select, update
from sqlalchemy.orm import Session

from hotline.models import (
    PENDING_NOTIFICATION_STATES,
    Notification,
    NotificationChannel,
    NotificationPurpose,
    NotificationState,
    Tip,
    TipLevel,
)

#: How long a claim holds before the row may be taken again.
LEASE = timedelta(seconds=60)
#: The sweep hands a due row to the queue again only after this long.
REENQUEUE_AFTER = timedelta(seconds=15)


def _urgency() -> ColumnElement[int]:
    # Critical first, then by deadline: one slow Standard batch never delays a Critical call.
    return case((Notification.level == TipLevel.CRITICAL, 0), else_=1)


def _calls_first() -> ColumnElement[int]:
    return case((Notification.channel == NotificationChannel.VOICE, 0), else_=1)


def planned_row(
    tip: Tip,
    *,
    channel: NotificationChannel,
    contact_id: int | None,
    due_at: datetime,
    deadline_at: datetime,
    now: datetime,
    purpose: NotificationPurpose = NotificationPurpose.ALERT,
    leg_id: int | None = None,
    phone_number_id: int | None = None,
    email: str | None = None,
    position: int = 0,
    round: int = 1,
) -> Notification:
    """A new PLANNED row of ``tip``'s outbox, at the tip's current level and plan version."""
    return Notification(
        tip_id=tip.id,
        leg_id=leg_id,
        purpose=purpose,
        channel=channel,
        contact_id=contact_id,
        phone_number_id=phone_number_id,
        email=email,
        level=tip.level,
        position=position,
        round=round,
        plan_version=tip.plan_version,
        state=NotificationState.PLANNED,
        due_at=due_at,
        deadline_at=deadline_at,
        created_at=now,
        updated_at=now,
    )


def due_ids(session: Session, now: datetime, limit: int = 100) -> list[int]:
    """Due rows not handed to the queue recently, most urgent first."""
    query = (
        select(Notification.id)
        .where(
            Notification.state == NotificationState.PLANNED,
            Notification.due_at <= now,
            (Notification.enqueued_at.is_(None))
            | (Notification.enqueued_at <= now - REENQUEUE_AFTER),
        )
        .order_by(_urgency(), Notification.deadline_at, _calls_first(), Notification.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def mark_enqueued(session: Session, ids: Sequence[int], now: datetime) -> None:
    if ids:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(ids))
            .values(enqueued_at=now)
            .execution_options(synchronize_session=False)
        )


def claim(session: Session, notification_id: int, worker: str, now: datetime) -> bool:
    """Take one due row for ``worker``. False when it is not due, not pending, or taken."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.state == NotificationState.PLANNED,
            Notification.due_at <= now,
        )
        .values(
            state=NotificationState.CLAIMED,
            claimed_by=worker,
            lease_until=now + LEASE,
            attempts=Notification.attempts + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def start_sending(session: Session, notification_id: int, worker: str, now: datetime) -> bool:
    """CLAIMED → SENDING, only if this worker still holds the claim (a confirmation may have
    cancelled it meanwhile)."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.state == NotificationState.CLAIMED,
            Notification.claimed_by == worker,
        )
        .values(state=NotificationState.SENDING, lease_until=now + LEASE, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def release_expired_claims(session: Session, now: datetime) -> tuple[list[int], list[int]]:
    """Rows whose worker vanished. CLAIMED ones go back to PLANNED (nothing was sent);
    SENDING ones become UNKNOWN (something may have been). Returns (replanned, unknown) ids."""
    claimed = list(
        session.scalars(
            select(Notification.id).where(
                Notification.state == NotificationState.CLAIMED, Notification.lease_until < now
            )
        )
    )
    if claimed:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(claimed), Notification.state == NotificationState.CLAIMED)
            .values(
                state=NotificationState.PLANNED,
                claimed_by=None,
                lease_until=None,
                enqueued_at=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    sending = list(
        session.scalars(
            select(Notification.id).where(
                Notification.state == NotificationState.SENDING, Notification.lease_until < now
            )
        )
    )
    if sending:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(sending), Notification.state == NotificationState.SENDING)
            .values(
                state=NotificationState.UNKNOWN,
                outcome="worker-lost",
                last_error="the worker stopped while the request was under way",
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    return claimed, sending


def cancel_pending(
    session: Session,
    *,
    tip_id: int,
    now: datetime,
    leg_id: int | None = None,
    before_version: int | None = None,
    reason: str,
) -> int:
    """Cancel what has not gone out yet (PLANNED or CLAIMED) for a tip or one of its legs."""
    query = update(Notification).where(
        Notification.tip_id == tip_id, Notification.state.in_(PENDING_NOTIFICATION_STATES)
    )
    if leg_id is not None:
        query = query.where(Notification.leg_id == leg_id)
    if before_version is not None:
        query = query.where(Notification.plan_version < before_version)
    result = session.execute(
        query.values(
            state=NotificationState.CANCELLED, outcome=reason[:32], updated_at=now
        ).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def pull_next_forward(session: Session, row: Notification, now: datetime) -> None:
    """The leg moves on: the next people on it (the next tier after ``row``'s) are called now
    rather than after their wait."""
    if row.leg_id is None:
        return
    later = session.scalars(
        select(Notification)
        .where(
            Notification.leg_id == row.leg_id,
            Notification.state == NotificationState.PLANNED,
            Notification.channel == NotificationChannel.VOICE,
            Notification.round == row.round,
            Notification.position > row.position,
            Notification.due_at > now,
        )
        .order_by(Notification.position, Notification.id)
    ).all()
    if later:
        first = later[0].position
        session.execute(
            update(Notification)
            .where(Notification.id.in_([n.id for n in later if n.position == first]))
            .values(due_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
