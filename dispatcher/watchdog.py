"""The watchdog: nothing about a Critical tip goes quiet.

- A Critical leg still unconfirmed 10 minutes after the tip arrived: an alert for the agents, on
  the tip and in the feed.
- Any notification past its send deadline and still not sent: an alert.
- A leg that has called everyone and waited, with no confirmation: it starts over from its first
  person (a new round), and the district's contacts and law enforcement are told by e-mail, and
  law enforcement's leg is opened if it was not. It never stops on its own: only a confirmation
  (or a level change) ends a leg.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatcher import planner
from dispatcher.outbox import planned_row
from dispatcher.planning import directory_for, raise_alert
from hotline import timeline
from hotline.models import (
    PENDING_NOTIFICATION_STATES,
    District,
    EscalationStyle,
    LegKind,
    LegState,
    Notification,
    NotificationChannel,
    NotificationLeg,
    NotificationPurpose,
    NotificationState,
    School,
    Tip,
    TipLevel,
)

UNCONFIRMED_ALERT_AFTER = timedelta(minutes=10)
#: A round's last call gets this long to be answered and confirmed before the leg starts over.
ROUND_GRACE = timedelta(minutes=3)


def run_watchdog(session: Session, now: datetime) -> dict[str, int]:
    counts = {"unconfirmed": 0, "past_due": 0, "restarted": 0}
    open_legs = session.scalars(
        select(NotificationLeg)
        .join(Tip, Tip.id == NotificationLeg.tip_id)
        .where(NotificationLeg.state == LegState.OPEN, Tip.level == TipLevel.CRITICAL)
    ).all()
    for leg in open_legs:
        tip = session.get_one(Tip, leg.tip_id)
        if leg.unconfirmed_alerted_at is None and now >= tip.received_at + UNCONFIRMED_ALERT_AFTER:
            leg.unconfirmed_alerted_at = now
            raise_alert(
                session,
                tip=tip,
                kind="leg_unconfirmed",
                message=f"Report {tip.report_number}: nobody on the {leg.kind.value} "
                "leg has confirmed after 10 minutes. Call them.",
                key=f"leg-unconfirmed:{leg.id}",
                now=now,
            )
            counts["unconfirmed"] += 1
        if _round_is_over(session, leg, now):
            _start_next_round(session, tip, leg, now)
            counts["restarted"] += 1

    past_due = session.scalars(
        select(Notification).where(
            Notification.state.in_(PENDING_NOTIFICATION_STATES),
            Notification.deadline_at < now,
            Notification.past_due_alerted_at.is_(None),
        )
    ).all()
    for row in past_due:
        row.past_due_alerted_at = now
        tip = session.get_one(Tip, row.tip_id)
        raise_alert(
            session,
            tip=tip,
            kind="notification_past_due",
            message=f"Report {tip.report_number}: a {row.channel.value} to contact "
            f"{row.contact_id} is past its deadline and has not gone out.",
            key=f"past-due:{row.id}",
            now=now,
        )
        counts["past_due"] += 1
    return counts


def _round_is_over(session: Session, leg: NotificationLeg, now: datetime) -> bool:
    """Everyone in this round was called (nothing pending or in flight) and the last call has
    had its grace period."""
    in_flight = session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(
            Notification.leg_id == leg.id,
            Notification.channel == NotificationChannel.VOICE,
            Notification.round == leg.round,
            Notification.state.in_((*PENDING_NOTIFICATION_STATES, NotificationState.SENDING)),
        )
    )
    if in_flight:
        return False
    last = session.scalar(
        select(func.max(func.coalesce(Notification.sent_at, Notification.updated_at))).where(
            Notification.leg_id == leg.id,
            Notification.channel == NotificationChannel.VOICE,
            Notification.round == leg.round,
        )
    )
    if last is None:
        # Nobody could be called at all: the planner raised a gap alert; start over anyway, so
        # a number fixed in the directory meanwhile is tried.
        return now >= leg.opened_at + ROUND_GRACE
    if isinstance(last, str):  # SQLite returns aggregates as text, without the column's type
        last = datetime.fromisoformat(last)
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return now >= last + ROUND_GRACE


def _start_next_round(session: Session, tip: Tip, leg: NotificationLeg, now: datetime) -> None:
    leg.round += 1
    leg.updated_at = now
    school = session.get(School, tip.school_id) if tip.school_id else None
    district: District | None = session.get(District, school.district_id) if school else None
    directory = directory_for(session, school)
    deadline = now + timedelta(minutes=20)
    if leg.kind is LegKind.POC:
        style = district.escalation_style if district else EscalationStyle.SEQUENTIAL
        tiers = planner.poc_tiers(directory, style)
    elif leg.kind is LegKind.PSAP:
        tiers = [planner.callable_only(directory.psaps)]
    else:
        tiers = [planner.callable_only(directory.law_enforcement)]
    tiers = [t for t in tiers if t]
    wait = planner.chain_wait(
        len(tiers),
        timedelta(seconds=district.sequential_wait_seconds if district else 150),
        now,
        deadline,
    )
    for position, tier in enumerate(tiers):
        for r in tier:
            session.add(
                planned_row(
                    tip,
                    channel=NotificationChannel.VOICE,
                    contact_id=r.contact_id,
                    phone_number_id=r.phone_number_id,
                    leg_id=leg.id,
                    position=position,
                    round=leg.round,
                    due_at=now + position * wait,
                    deadline_at=deadline,
                    now=now,
                )
            )
    # Keep the district and law enforcement informed while the leg goes around again.
    informed = [*directory.district_contacts, *directory.law_enforcement]
    for r in informed:
        if r.email:
            session.add(
                planned_row(
                    tip,
                    channel=NotificationChannel.EMAIL,
                    contact_id=r.contact_id,
                    email=r.email,
                    purpose=NotificationPurpose.ESCALATION,
                    round=leg.round,
                    due_at=now,
                    deadline_at=deadline,
                    now=now,
                )
            )
    law_leg = session.scalar(
        select(NotificationLeg).where(
            NotificationLeg.tip_id == tip.id, NotificationLeg.kind == LegKind.LAW_ENFORCEMENT
        )
    )
    if leg.kind is not LegKind.LAW_ENFORCEMENT and law_leg is None:
        law_leg = NotificationLeg(
            tip_id=tip.id,
            kind=LegKind.LAW_ENFORCEMENT,
            state=LegState.OPEN,
            round=1,
            opened_at=now,
            updated_at=now,
        )
        session.add(law_leg)
        session.flush()
        for r in planner.callable_only(directory.law_enforcement):
            session.add(
                planned_row(
                    tip,
                    channel=NotificationChannel.VOICE,
                    contact_id=r.contact_id,
                    phone_number_id=r.phone_number_id,
                    leg_id=law_leg.id,
                    purpose=NotificationPurpose.ESCALATION,
                    due_at=now,
                    deadline_at=deadline,
                    now=now,
                )
            )
    session.flush()
    timeline.record(
        session,
        tip,
        "leg.round_restarted",
        at=now,
        leg=leg.kind.value,
        round=leg.round,
        informed=len(informed),
    )
    raise_alert(
        session,
        tip=tip,
        kind="leg_exhausted",
        message=f"Report {tip.report_number}: everyone on the {leg.kind.value} leg was "
        f"called without a confirmation; calling them again (round {leg.round}).",
        key=f"leg-round:{leg.id}:{leg.round}",
        now=now,
    )
