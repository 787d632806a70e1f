"""The outbox: planned notifications as rows, claimed by workers, never lost, never sent twice.

A row moves PLANNED → CLAIMED → SENDING → SENT | UNKNOWN | FAILED (or CANCELLED while pending).
Each step commits before the next begins:

- CLAIMED says a worker took the row; nothing has left yet. A worker that dies here leaves a
  lease that expires, and the row goes back to PLANNED: re-sending is safe.
- SENDING is committed just before the request to the provider. A worker that dies after it
  leaves a row whose fate is unknown: it becomes UNKNOWN, is never re-sent blindly, and the
  escalation (the next person on the leg, the watchdog) covers the gap.

Every change of a row's state is one conditional update, ``UPDATE … WHERE id = … AND state =
<expected> [AND claimed_by = <token>]``, made by :func:`transition` from the table
:data:`TRANSITIONS`; nothing else writes ``state`` (a flush that tries is refused). A write that
lost a race (a confirmation cancelled the row meanwhile, the lease expired and the sweep marked
it unknown) changes nothing and says so. Claims use ``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL so workers never wait on each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, event, inspect, select, update
from sqlalchemy.orm import Session

from hotline.models import (
    PENDING_NOTIFICATION_STATES,
    LegState,
    Notification,
    NotificationChannel,
    NotificationLeg,
    NotificationOutcome,
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


S = NotificationState

#: Every state change an outbox row may make: (from, to) → why. Changes by the worker holding
#: the claim are checked against its token (``claimed_by``); the others (the sweep, a
#: confirmation, a re-plan) only against the state.
TRANSITIONS: dict[tuple[NotificationState, NotificationState], str] = {
    (S.PLANNED, S.CLAIMED): "a worker claims a due row",
    (S.PLANNED, S.CANCELLED): "no longer needed: leg confirmed, re-planned, leg closed",
    (S.CLAIMED, S.SENDING): "the claimant is about to make the request",
    (S.CLAIMED, S.PLANNED): "postponed by the claimant, or its lease expired: nothing left",
    (S.CLAIMED, S.FAILED): "the claimant found no usable number or address",
    (S.CLAIMED, S.CANCELLED): "no longer needed while claimed: the claimant will not send",
    (S.SENDING, S.SENT): "the provider accepted the request",
    (S.SENDING, S.PLANNED): "the provider refused before anything left (429, unreachable)",
    (S.SENDING, S.FAILED): "the provider refused it for good",
    (S.SENDING, S.UNKNOWN): "the outcome cannot be known: timeout, error, worker lost",
}
#: Changes that only the worker holding the claim makes.
BY_CLAIMANT = frozenset(
    {
        (S.CLAIMED, S.SENDING),
        (S.CLAIMED, S.FAILED),
        (S.SENDING, S.SENT),
        (S.SENDING, S.PLANNED),
        (S.SENDING, S.FAILED),
    }
)


class IllegalTransition(ValueError):
    pass


def transition(
    session: Session,
    frm: NotificationState,
    to: NotificationState,
    *,
    now: datetime,
    ids: Sequence[int] | None = None,
    token: str | None = None,
    where: Sequence[ColumnElement[bool]] = (),
    **values: object,
) -> list[int]:
    """Move rows from ``frm`` to ``to`` in one conditional update; returns the ids that moved
    (a row another transaction changed first is simply not among them)."""
    if (frm, to) not in TRANSITIONS:
        raise IllegalTransition(f"an outbox row never goes from {frm.value} to {to.value}")
    if (frm, to) in BY_CLAIMANT and token is None:
        raise IllegalTransition(f"{frm.value} → {to.value} is the claimant's: give its token")
    query = update(Notification).where(Notification.state == frm, *where)
    if ids is not None:
        if not ids:
            return []
        query = query.where(Notification.id.in_(list(ids)))
    if token is not None:
        query = query.where(Notification.claimed_by == token)
    if to in (S.PLANNED, *FINISHED_STATES):
        # The claim ends with the request: a later sweep must not mistake it for a live one.
        values = {"lease_until": None, **values}
    if to is S.PLANNED:
        values = {"claimed_by": None, "enqueued_at": None, **values}
    moved = session.execute(
        query.values(state=to, updated_at=now, **values)
        .returning(Notification.id)
        .execution_options(synchronize_session="fetch")
    ).scalars()
    return list(moved)


def transition_one(
    session: Session,
    row_id: int,
    frm: NotificationState,
    to: NotificationState,
    *,
    now: datetime,
    token: str | None = None,
    **values: Any,
) -> bool:
    return bool(transition(session, frm, to, now=now, ids=[row_id], token=token, **values))


#: States a row ends in (the request was made or given up on).
FINISHED_STATES = (S.SENT, S.UNKNOWN, S.FAILED, S.CANCELLED)


@event.listens_for(Session, "before_flush")
def _state_changes_only_through_transition(
    session: Session, _flush_context: object, _instances: object
) -> None:
    # The structure that keeps the promise: a row's state is written by `transition` alone.
    for obj in session.new:
        if isinstance(obj, Notification) and obj.state is not S.PLANNED:
            raise IllegalTransition("a new outbox row starts PLANNED")
    for obj in session.dirty:
        if isinstance(obj, Notification) and inspect(obj).attrs.state.history.has_changes():
            raise IllegalTransition("an outbox row's state changes only through transition()")


def leg_is_open() -> ColumnElement[bool]:
    """The row belongs to no leg, or to a leg still waiting for a confirmation."""
    return Notification.leg_id.is_(None) | Notification.leg_id.in_(
        select(NotificationLeg.id).where(NotificationLeg.state == LegState.OPEN)
    )


def claim(session: Session, notification_id: int, token: str, now: datetime) -> bool:
    """Take one due row under ``token`` (unique to this attempt). False when it is not due, not
    pending, taken, or its leg was confirmed meanwhile (then it is cancelled)."""
    if transition(
        session,
        S.PLANNED,
        S.CLAIMED,
        now=now,
        ids=[notification_id],
        where=[Notification.due_at <= now, leg_is_open()],
        claimed_by=token,
        lease_until=now + LEASE,
        attempts=Notification.attempts + 1,
    ):
        return True
    # A due row of a closed leg would come back on every sweep: it is not needed any more.
    transition(
        session,
        S.PLANNED,
        S.CANCELLED,
        now=now,
        ids=[notification_id],
        where=[~leg_is_open()],
        outcome=NotificationOutcome.LEG_CLOSED,
    )
    return False


def start_sending(session: Session, notification_id: int, token: str, now: datetime) -> bool:
    """CLAIMED → SENDING, only if this worker still holds the claim (a confirmation may have
    cancelled it meanwhile)."""
    return transition_one(
        session, notification_id, S.CLAIMED, S.SENDING, now=now, token=token,
        lease_until=now + LEASE,
    )  # fmt: skip


def release_expired_claims(session: Session, now: datetime) -> tuple[list[int], list[int]]:
    """Rows whose worker vanished. CLAIMED ones go back to PLANNED (nothing was sent);
    SENDING ones become UNKNOWN (something may have been). Returns (replanned, unknown) ids."""
    expired = [Notification.lease_until < now]
    replanned = transition(session, S.CLAIMED, S.PLANNED, now=now, where=expired)
    unknown = transition(
        session,
        S.SENDING,
        S.UNKNOWN,
        now=now,
        where=expired,
        outcome=NotificationOutcome.WORKER_LOST,
        last_error="the worker stopped while the request was under way",
    )
    return replanned, unknown


def cancel_pending(
    session: Session,
    *,
    tip_id: int,
    now: datetime,
    leg_id: int | None = None,
    before_version: int | None = None,
    reason: NotificationOutcome,
) -> int:
    """Cancel what has not gone out yet (PLANNED or CLAIMED) for a tip or one of its legs;
    ``reason`` is the rows' outcome."""
    # A reply to the reporter is no part of the tip's plan: no re-plan or leg cancels it.
    where: list[ColumnElement[bool]] = [
        Notification.tip_id == tip_id,
        Notification.purpose != NotificationPurpose.REPORTER_REPLY,
    ]
    if leg_id is not None:
        where.append(Notification.leg_id == leg_id)
    if before_version is not None:
        where.append(Notification.plan_version < before_version)
    return sum(
        len(transition(session, frm, S.CANCELLED, now=now, where=where, outcome=reason))
        for frm in PENDING_NOTIFICATION_STATES
    )


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
