"""Confirmation: someone on a leg says they received the tip. It ends that leg, not the others.

Used by the alert call (a keypress), SMS ("1 <report number>") and the portal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dispatcher.outbox import cancel_pending
from hotline import timeline
from hotline.models import (
    ActorType,
    Contact,
    ContactRole,
    LegKind,
    LegState,
    NotificationLeg,
    Tip,
)

#: Which leg a contact confirms for.
LEG_OF_ROLE: dict[ContactRole, LegKind] = {
    ContactRole.SCHOOL_CONTACT: LegKind.POC,
    ContactRole.DISTRICT_CONTACT: LegKind.POC,
    ContactRole.PSAP: LegKind.PSAP,
    ContactRole.LAW_ENFORCEMENT: LegKind.LAW_ENFORCEMENT,
}


@dataclass(frozen=True)
class Confirmation:
    tip_id: int
    leg: LegKind | None
    #: False when the leg was already confirmed (by this person or someone else) or there is no
    #: open leg for this contact: the receipt is still on the timeline.
    ended_leg: bool
    confirmed_by_contact_id: int | None
    cancelled_notifications: int


def confirm(
    session: Session,
    *,
    tip: Tip,
    contact: Contact | None,
    via: str,
    now: datetime,
    leg_kind: LegKind | None = None,
) -> Confirmation:
    """Record that ``contact`` received ``tip`` (by ``via``: voice, sms, portal) and end their
    leg: everything of it not yet sent is cancelled. Idempotent."""
    kind = leg_kind or (LEG_OF_ROLE.get(contact.role) if contact is not None else None)
    actor_id = None if contact is None else contact.id
    # One conditional update ends the leg: of two people pressing 1 at once, exactly one ends
    # it (the other's update finds it confirmed, whatever its session had cached).
    ended = (
        kind is not None
        and session.execute(
            update(NotificationLeg)
            .where(
                NotificationLeg.tip_id == tip.id,
                NotificationLeg.kind == kind,
                NotificationLeg.state == LegState.OPEN,
            )
            .values(
                state=LegState.CONFIRMED,
                confirmed_at=now,
                confirmed_by_contact_id=actor_id,
                confirmed_via=via,
                updated_at=now,
            )
            .returning(NotificationLeg.id)
            .execution_options(synchronize_session="fetch")
        ).scalar()
        is not None
    )
    leg = None
    if kind is not None:
        leg = session.scalar(
            select(NotificationLeg)
            .where(NotificationLeg.tip_id == tip.id, NotificationLeg.kind == kind)
            .execution_options(populate_existing=True)
        )
    if leg is None or not ended:
        timeline.record(
            session,
            tip,
            "receipt.confirmed",
            at=now,
            actor_type=ActorType.CONTACT,
            actor_id=actor_id,
            via=via,
            leg=None if kind is None else kind.value,
            leg_already=None if leg is None else leg.state.value,
        )
        return Confirmation(
            tip.id, kind, False, None if leg is None else leg.confirmed_by_contact_id, 0
        )
    cancelled = cancel_pending(
        session, tip_id=tip.id, leg_id=leg.id, now=now, reason="leg-confirmed"
    )
    timeline.record(
        session,
        tip,
        "leg.confirmed",
        at=now,
        actor_type=ActorType.CONTACT,
        actor_id=actor_id,
        via=via,
        leg=leg.kind.value,
        cancelled=cancelled,
    )
    return Confirmation(tip.id, leg.kind, True, actor_id, cancelled)
