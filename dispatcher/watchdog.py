"""The watchdog: nothing about a Critical tip goes quiet.

- A Critical leg still unconfirmed 10 minutes after the tip arrived: an alert for the agents, on
  the tip and in the feed.
- Any notification past its send deadline and still not sent: an alert.
- A leg whose round has ended (every call of it over, a lost final status counted as over once
  the call cannot still be going) with no confirmation: it starts over from its first person (a
  new round); the duty supervisors' leg and law enforcement's are opened if the tip had none;
  the district's contacts and law enforcement are told by e-mail, at most once per round and
  once per ESCALATION_EMAIL_EVERY for the tip; the agents' alert for the leg is raised once and
  updated each round. It never stops on its own: only a confirmation (or a level change) ends a
  leg. A leg with nobody left to call starts no round (and sends nothing again) until someone on
  it can be called; the duty line has the tip meanwhile.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatcher import plan_rules
from dispatcher.legs import ROUND_DEADLINE, legs_of, open_leg, plan_round
from dispatcher.outbox import planned_row
from dispatcher.plan_writer import aggregate_time, directory_for, raise_alert
from dispatcher.sender import CALL_TIME_LIMIT_SECONDS
from hotline.core import timeline
from hotline.models import (
    PENDING_NOTIFICATION_STATES,
    AlertKind,
    Call,
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
    TipEvent,
    TipEventKind,
    TipLevel,
)

UNCONFIRMED_ALERT_AFTER = timedelta(minutes=10)
#: After a round's last call ended, this long for a call back before the leg starts over.
ROUND_GRACE = timedelta(minutes=1)
#: The longest an alert call can last once placed, besides its ring timeout (the time limit
#: the sender gives Twilio).
CALL_LIFETIME = timedelta(seconds=CALL_TIME_LIMIT_SECONDS)
#: Escalation e-mails about one tip are sent at most this often (HOTLINE_ESCALATION_EMAIL_MINUTES).
ESCALATION_EMAIL_EVERY = timedelta(minutes=15)


def _known_exhausted(session: Session, leg: NotificationLeg) -> bool:
    """The leg's round ended with nobody left to call, and that was already handled: the
    watchdog does not handle it again on every pass (no new alert, no e-mails) until someone
    on the leg can be called again (a number fixed in the directory)."""
    return (
        session.scalar(
            select(TipEvent.id)
            .where(
                TipEvent.tip_id == leg.tip_id,
                TipEvent.kind == TipEventKind.LEG_EXHAUSTED,
                TipEvent.at >= leg.updated_at,
            )
            .limit(1)
        )
        is not None
    )


def open_critical_legs(session: Session) -> list[int]:
    return list(
        session.scalars(
            select(NotificationLeg.id)
            .join(Tip, Tip.id == NotificationLeg.tip_id)
            .where(NotificationLeg.state == LegState.OPEN, Tip.level == TipLevel.CRITICAL)
            .order_by(NotificationLeg.id)
        )
    )


def watch_leg(
    session: Session,
    leg_id: int,
    now: datetime,
    counts: dict[str, int],
    *,
    escalation_email_every: timedelta = ESCALATION_EMAIL_EVERY,
) -> None:
    """One open leg: the 10-minute alert, and the next round when this one is over."""
    leg = session.get_one(NotificationLeg, leg_id)
    if leg.state is not LegState.OPEN:
        return  # confirmed meanwhile
    tip = session.get_one(Tip, leg.tip_id)
    if leg.unconfirmed_alerted_at is None and now >= tip.received_at + UNCONFIRMED_ALERT_AFTER:
        leg.unconfirmed_alerted_at = now
        raise_alert(
            session,
            tip=tip,
            kind=AlertKind.LEG_UNCONFIRMED,
            message=f"Report {tip.report_number}: nobody on the {leg.kind.value} "
            "leg has confirmed after 10 minutes. Call them.",
            key=f"leg-unconfirmed:{leg.id}",
            now=now,
        )
        counts["unconfirmed"] += 1
    if _round_is_over(session, leg, now):
        if _known_exhausted(session, leg) and not _anyone_callable(session, tip, leg):
            return
        if _next_round(session, tip, leg, now, escalation_email_every):
            counts["restarted"] += 1
        else:
            counts["exhausted"] += 1


def alert_past_due(session: Session, now: datetime, counts: dict[str, int]) -> None:
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
            kind=AlertKind.NOTIFICATION_PAST_DUE,
            message=f"Report {tip.report_number}: a {row.channel.value} to contact "
            f"{row.contact_id} is past its deadline and has not gone out.",
            key=f"past-due:{row.id}",
            now=now,
        )
        counts["past_due"] += 1


def _round_is_over(session: Session, leg: NotificationLeg, now: datetime) -> bool:
    """Every call of this round has ended without a confirmation (nothing pending or in flight)
    and the last of them has had ROUND_GRACE. A call whose final status never came counts as
    ended once it could not possibly still be going (its ring timeout plus its time limit): one
    lost callback must not stall a leg past its deadline."""
    rows = session.scalars(
        select(Notification).where(
            Notification.leg_id == leg.id,
            Notification.channel == NotificationChannel.VOICE,
            Notification.round == leg.round,
        )
    ).all()
    if any(r.state in (*PENDING_NOTIFICATION_STATES, NotificationState.SENDING) for r in rows):
        return False
    ended = session.execute(
        select(Call.sid, Call.ended_at).where(
            Call.sid.in_([r.provider_sid for r in rows if r.provider_sid])
        )
    ).all()
    ended_at = {sid: at for sid, at in ended if at is not None}
    lifetime = CALL_LIFETIME + timedelta(seconds=_ring_timeout(session, leg))
    last = leg.opened_at
    for r in rows:
        if r.state in (NotificationState.SENT, NotificationState.UNKNOWN):
            finished = ended_at.get(r.provider_sid or "")
            if finished is None:
                started = r.sent_at or r.updated_at
                if now < started + lifetime:
                    return False  # may still be ringing or talking
                finished = started + lifetime
            last = max(last, finished)
        else:
            last = max(last, r.updated_at)
    return now >= last + ROUND_GRACE


def _ring_timeout(session: Session, leg: NotificationLeg) -> int:
    district = _district(session, session.get_one(Tip, leg.tip_id))
    return district.ring_timeout_seconds if district else 30


def _anyone_callable(session: Session, tip: Tip, leg: NotificationLeg) -> bool:
    school = session.get(School, tip.school_id) if tip.school_id else None
    district = _district(session, tip)
    style = district.escalation_style if district else EscalationStyle.SEQUENTIAL
    return bool(plan_rules.tiers_for(leg.kind, directory_for(session, school), style))


def _district(session: Session, tip: Tip) -> District | None:
    school = session.get(School, tip.school_id) if tip.school_id else None
    return session.get(District, school.district_id) if school else None


def _next_round(
    session: Session, tip: Tip, leg: NotificationLeg, now: datetime, email_every: timedelta
) -> bool:
    """The round ended unconfirmed. Start the next one when anyone on the leg can be called;
    either way the duty supervisors are put on the tip (once) and the agents' alert for this
    leg says so (one alert, updated each round). False when nobody was left to call."""
    school = session.get(School, tip.school_id) if tip.school_id else None
    district = _district(session, tip)
    directory = directory_for(session, school)
    style = district.escalation_style if district else EscalationStyle.SEQUENTIAL
    wait = timedelta(seconds=district.sequential_wait_seconds if district else 150)
    restarted = bool(plan_rules.tiers_for(leg.kind, directory, style))
    if restarted:
        leg.round += 1
        leg.updated_at = now
        plan_round(session, tip, leg, directory, style=style, sequential_wait=wait, now=now)
    informed = _escalation_emails(session, tip, leg, directory, now, email_every)
    if leg.kind is not LegKind.LAW_ENFORCEMENT:
        _open_extra_leg(session, tip, LegKind.LAW_ENFORCEMENT, directory, style, wait, now)
    if leg.kind is not LegKind.DUTY:
        _open_extra_leg(session, tip, LegKind.DUTY, directory, style, wait, now)
    timeline.record(
        session,
        tip,
        TipEventKind.LEG_ROUND_RESTARTED if restarted else TipEventKind.LEG_EXHAUSTED,
        at=now,
        leg=leg.kind.value,
        round=leg.round,
        informed=informed,
    )
    what = (
        f"calling them again (round {leg.round})"
        if restarted
        else "nobody on it can be called any more"
    )
    raise_alert(
        session,
        tip=tip,
        kind=AlertKind.LEG_EXHAUSTED,
        message=f"Report {tip.report_number}: everyone on the {leg.kind.value} leg was "
        f"called without a confirmation; {what}. The duty supervisors are called too.",
        key=f"leg-exhausted:{leg.id}",
        now=now,
        again=restarted,
    )
    return restarted


def _escalation_emails(
    session: Session,
    tip: Tip,
    leg: NotificationLeg,
    directory: plan_rules.Directory,
    now: datetime,
    every: timedelta,
) -> int:
    """Keep the district and law enforcement informed while a leg goes around again: once per
    round at most, and never more often than ``every`` for one tip (three legs restarting do
    not triple it)."""
    last = session.scalar(
        select(func.max(Notification.created_at)).where(
            Notification.tip_id == tip.id,
            Notification.purpose == NotificationPurpose.ESCALATION,
            Notification.channel == NotificationChannel.EMAIL,
        )
    )
    if last is not None and now < aggregate_time(last) + every:
        return 0
    informed = [r for r in (*directory.district_contacts, *directory.law_enforcement) if r.email]
    for r in informed:
        session.add(
            planned_row(
                tip,
                channel=NotificationChannel.EMAIL,
                contact_id=r.contact_id,
                email=r.email,
                purpose=NotificationPurpose.ESCALATION,
                round=leg.round,
                due_at=now,
                deadline_at=now + ROUND_DEADLINE,
                now=now,
            )
        )
    return len(informed)


def _open_extra_leg(
    session: Session,
    tip: Tip,
    kind: LegKind,
    directory: plan_rules.Directory,
    style: EscalationStyle,
    wait: timedelta,
    now: datetime,
) -> None:
    """Open a leg the tip did not have (law enforcement, the duty line) and call it, once."""
    if kind in legs_of(session, tip.id) or not plan_rules.tiers_for(kind, directory, style):
        return
    leg = open_leg(session, tip, kind, now)
    plan_round(
        session,
        tip,
        leg,
        directory,
        style=style,
        sequential_wait=wait,
        now=now,
        purpose=NotificationPurpose.ESCALATION,
    )
