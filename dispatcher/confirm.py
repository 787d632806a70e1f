"""Confirmation: someone on a leg says they received the tip. It ends that leg, not the others.

Used by the alert call (a keypress), a contact calling back (the report number keyed in), SMS
("1 <report number>") and the portal.

Caller ID is not identity: a call or text from a contact's number confirms nothing by itself.
Calling or texting back confirms only the report number the contact gives, and only when that
report was sent to the number (:func:`confirmable_notifications`, the one place that decides it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from dispatcher.outbox import cancel_pending
from dispatcher.plan_writer import DONE_STATES
from hotline.core import timeline
from hotline.core.reporters import normalize_reporter_number
from hotline.models import (
    ActorType,
    Contact,
    ContactRole,
    LegKind,
    LegState,
    Notification,
    NotificationLeg,
    NotificationOutcome,
    PhoneNumber,
    Tip,
    TipEventKind,
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
            TipEventKind.RECEIPT_CONFIRMED,
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
        session, tip_id=tip.id, leg_id=leg.id, now=now, reason=NotificationOutcome.LEG_CONFIRMED
    )
    timeline.record(
        session,
        tip,
        TipEventKind.LEG_CONFIRMED,
        at=now,
        actor_type=ActorType.CONTACT,
        actor_id=actor_id,
        via=via,
        leg=leg.kind.value,
        cancelled=cancelled,
    )
    return Confirmation(tip.id, leg.kind, True, actor_id, cancelled)


class ConfirmOutcome(enum.StrEnum):
    """What confirming a report from a number came to, for the answer."""

    #: A leg ended with this confirmation.
    CONFIRMED = "confirmed"
    #: Every leg the number was on was already confirmed (by them or a colleague).
    ALREADY = "already"
    #: Notified without a leg to end (a Standard tip, a cancelled leg): the receipt is recorded.
    RECEIPT = "receipt"


def confirmable_notifications(
    session: Session, *, number: str | None, report_number: str
) -> list[Notification]:
    """The outbox rows of report ``report_number`` that the phone ``number`` may confirm,
    newest first: those sent (a state of ``DONE_STATES``, whatever the channel) to that number,
    or to an active contact using it (a shared PSAP line: each contact on it). Rows of every
    leg state are included, so a leg already confirmed is answered as such.

    Empty when the report does not exist, was not sent there, or the number is withheld: the
    caller must not be able to tell these apart.
    """
    e164 = normalize_reporter_number(number or "")
    if e164 is None or not report_number.isdigit():
        return []
    phone_id = session.scalar(select(PhoneNumber.id).where(PhoneNumber.e164 == e164))
    tip_id = session.scalar(select(Tip.id).where(Tip.report_number == report_number))
    if phone_id is None or tip_id is None:
        return []
    contacts = select(Contact.id).where(
        Contact.phone_number_id == phone_id, Contact.active.is_(True)
    )
    return list(
        session.scalars(
            select(Notification)
            .where(
                Notification.tip_id == tip_id,
                Notification.state.in_(DONE_STATES),
                or_(
                    Notification.phone_number_id == phone_id,
                    Notification.contact_id.in_(contacts),
                ),
            )
            .order_by(func.coalesce(Notification.sent_at, Notification.updated_at).desc())
            .order_by(Notification.id.desc())
        )
    )


def confirm_notified(
    session: Session, rows: list[Notification], *, via: str, now: datetime
) -> ConfirmOutcome:
    """Confirm every leg that these rows of one tip (newest first, as
    :func:`confirmable_notifications` gives them) were on, each for the contact notified on it
    most recently: a principal confirms the school's leg, the PSAP's line the PSAP's leg."""
    if not rows:
        raise ValueError("nothing to confirm")
    tip = session.get_one(Tip, rows[0].tip_id)
    by_leg: dict[LegKind | None, Contact | None] = {}
    for row in rows:
        contact = session.get(Contact, row.contact_id) if row.contact_id else None
        leg = session.get(NotificationLeg, row.leg_id) if row.leg_id else None
        if leg is not None:
            kind: LegKind | None = leg.kind
        elif contact is not None:
            kind = LEG_OF_ROLE.get(contact.role)  # None: a receipt only (a PIO's e-mail)
        else:
            continue
        by_leg.setdefault(kind, contact)
    outcomes: set[ConfirmOutcome] = set()
    for kind, contact in by_leg.items():
        result = confirm(session, tip=tip, contact=contact, via=via, now=now, leg_kind=kind)
        outcomes.add(_outcome(session, tip, result))
    for outcome in (ConfirmOutcome.CONFIRMED, ConfirmOutcome.ALREADY):
        if outcome in outcomes:
            return outcome
    return ConfirmOutcome.RECEIPT


def _outcome(session: Session, tip: Tip, result: Confirmation) -> ConfirmOutcome:
    if result.ended_leg:
        return ConfirmOutcome.CONFIRMED
    state = None
    if result.leg is not None:
        state = session.scalar(
            select(NotificationLeg.state).where(
                NotificationLeg.tip_id == tip.id, NotificationLeg.kind == result.leg
            )
        )
    return ConfirmOutcome.ALREADY if state is LegState.CONFIRMED else ConfirmOutcome.RECEIPT
