"""Legs in the database: opening a tip's leg, and the rows of one round of it.

Who is called on a leg, tier after tier, is one pure rule (:func:`dispatcher.plan_rules.tiers_for`);
the planner uses it for the first round and the watchdog for every round after, through
:func:`plan_round` here, with the same waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher import plan_rules
from dispatcher.outbox import planned_row
from hotline.models import (
    EscalationStyle,
    LegKind,
    LegState,
    Notification,
    NotificationLeg,
    NotificationPurpose,
    Tip,
)

#: A later round gets a Critical tip's own deadline again, counted from when it starts.
ROUND_DEADLINE = timedelta(minutes=20)


def legs_of(session: Session, tip_id: int) -> dict[LegKind, NotificationLeg]:
    return {
        leg.kind: leg
        for leg in session.scalars(select(NotificationLeg).where(NotificationLeg.tip_id == tip_id))
    }


def open_leg(session: Session, tip: Tip, kind: LegKind, now: datetime) -> NotificationLeg:
    """The tip's leg of ``kind``, made (or reopened, when a re-plan had cancelled it) open. A
    confirmed leg stays confirmed."""
    leg = legs_of(session, tip.id).get(kind)
    if leg is None:
        leg = NotificationLeg(
            tip_id=tip.id, kind=kind, state=LegState.OPEN, round=1, opened_at=now, updated_at=now
        )
        session.add(leg)
        session.flush()
    elif leg.state is LegState.CANCELLED:
        leg.state, leg.updated_at = LegState.OPEN, now
    return leg


def add_planned(
    session: Session,
    tip: Tip,
    items: Sequence[plan_rules.Planned],
    legs: dict[LegKind, NotificationLeg],
    now: datetime,
) -> list[Notification]:
    """Rows for the planner's items, on their legs (an item of a confirmed leg is dropped)."""
    rows = []
    for item in items:
        leg = legs.get(item.leg) if item.leg else None
        if leg is not None and leg.state is LegState.CONFIRMED:
            continue
        row = planned_row(
            tip,
            channel=item.channel,
            contact_id=item.contact_id,
            phone_number_id=item.phone_number_id,
            email=item.email,
            purpose=item.purpose,
            leg_id=None if leg is None else leg.id,
            position=item.position,
            round=1 if leg is None else leg.round,
            due_at=item.due_at,
            deadline_at=item.deadline_at,
            now=now,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def plan_round(
    session: Session,
    tip: Tip,
    leg: NotificationLeg,
    directory: plan_rules.Directory,
    *,
    style: EscalationStyle,
    sequential_wait: timedelta,
    now: datetime,
    purpose: NotificationPurpose = NotificationPurpose.ALERT,
) -> list[Notification]:
    """The calls of the leg's current round, from ``now``, with a fresh deadline. Empty when
    nobody on the leg can be called."""
    tiers = plan_rules.tiers_for(leg.kind, directory, style)
    deadline = now + ROUND_DEADLINE
    wait = plan_rules.chain_wait(len(tiers), sequential_wait, now, deadline)
    items = [
        replace(item, purpose=purpose)
        for item in plan_rules.round_calls(
            leg.kind, tiers, start=now, deadline=deadline, wait=wait, now=now
        )
    ]
    return add_planned(session, tip, items, {leg.kind: leg}, now)
