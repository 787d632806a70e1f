"""Turning a tip into outbox rows: the first plan, a re-plan when its level or type changes, and
notifications of new information. Runs inside the caller's transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dispatcher import plan_rules
from dispatcher.calendar import BusinessCalendar, load_calendar, notify_deadline
from dispatcher.legs import add_planned, legs_of, open_leg
from dispatcher.outbox import cancel_pending, planned_row
from hotline.core import timeline
from hotline.models import (
    PENDING_NOTIFICATION_STATES,
    Alert,
    AlertKind,
    Contact,
    ContactRole,
    District,
    EscalationStyle,
    LegKind,
    LegState,
    Notification,
    NotificationChannel,
    NotificationOutcome,
    NotificationPurpose,
    NotificationState,
    PhoneNumber,
    School,
    Tip,
    TipEvent,
    TipEventKind,
    TipLevel,
)

log = logging.getLogger(__name__)

#: Without a known school there is no district calendar: Standard and Other deadlines then run
#: on the wall clock, which is never later than business time.
WALL_CLOCK_DEADLINES = {
    TipLevel.CRITICAL: timedelta(minutes=20),
    TipLevel.STANDARD: timedelta(hours=1),
    TipLevel.OTHER: timedelta(hours=4),
}
LEVEL_RANK = {TipLevel.CRITICAL: 0, TipLevel.STANDARD: 1, TipLevel.OTHER: 2}
DONE_STATES = (NotificationState.SENT, NotificationState.SENDING, NotificationState.UNKNOWN)


@dataclass(frozen=True)
class PlanResult:
    version: int
    created: int
    #: Rows due at once: hand them to the queue after commit.
    due_now: tuple[int, ...]


def raise_alert(
    session: Session,
    *,
    tip: Tip | None,
    kind: AlertKind,
    message: str,
    key: str,
    now: datetime,
    again: bool = False,
) -> Alert | None:
    """Add an alert to the agents' feed (and the tip's timeline) once per ``key``. With
    ``again``, a condition that comes back updates its alert (new message, shown again as
    unacknowledged) instead of adding another; otherwise nothing happens the second time."""
    alert = session.scalar(select(Alert).where(Alert.dedupe_key == key[:128]))
    if alert is not None:
        if not again:
            return None
        alert.message = message[:500]
        alert.occurrences += 1
        alert.updated_at = now
        alert.acknowledged_at = alert.acknowledged_by = None
    else:
        alert = Alert(
            tip_id=None if tip is None else tip.id,
            kind=kind,
            message=message[:500],
            dedupe_key=key[:128],
            created_at=now,
        )
        session.add(alert)
    if tip is not None:
        timeline.record(
            session, tip, TipEventKind.ALERT_RAISED, at=now, alert_kind=kind, message=message
        )
    log.warning("alert %s: %s", kind, message)
    return alert


def _recipient(contact: Contact, phone: PhoneNumber) -> plan_rules.Recipient:
    return plan_rules.Recipient(
        contact_id=contact.id,
        priority=contact.priority,
        phone_number_id=phone.id,
        callable=not phone.bad_for_calls,
        textable=contact.sms and not phone.sms_opted_out and not phone.bad_for_sms,
        email=contact.email or None,
    )


def duty_recipients(session: Session) -> list[plan_rules.Recipient]:
    """The hotline's own supervisors on duty, in priority order."""
    rows = session.execute(
        select(Contact, PhoneNumber)
        .join(PhoneNumber, Contact.phone_number_id == PhoneNumber.id)
        .where(
            Contact.role == ContactRole.DUTY,
            Contact.district_id.is_(None),
            Contact.active.is_(True),
        )
        .order_by(Contact.priority, Contact.id)
    ).all()
    return [_recipient(c, p) for c, p in rows]


def directory_for(session: Session, school: School | None) -> plan_rules.Directory:
    duty = duty_recipients(session)
    if school is None:
        return plan_rules.Directory((), (), (), (), duty)
    rows = session.execute(
        select(Contact, PhoneNumber)
        .join(PhoneNumber, Contact.phone_number_id == PhoneNumber.id)
        .where(Contact.district_id == school.district_id, Contact.active.is_(True))
        .where((Contact.school_id == school.id) | Contact.school_id.is_(None))
        .order_by(Contact.priority, Contact.id)
    ).all()

    def pick(role: ContactRole, *, prefer_school: bool) -> list[plan_rules.Recipient]:
        own = [_recipient(c, p) for c, p in rows if c.role is role and c.school_id == school.id]
        wide = [_recipient(c, p) for c, p in rows if c.role is role and c.school_id is None]
        return (own or wide) if prefer_school else own

    return plan_rules.Directory(
        school_contacts=pick(ContactRole.SCHOOL_CONTACT, prefer_school=False),
        district_contacts=[
            _recipient(c, p) for c, p in rows if c.role is ContactRole.DISTRICT_CONTACT
        ],
        # A school's own PSAP or police line wins over the district-wide one.
        psaps=pick(ContactRole.PSAP, prefer_school=True),
        law_enforcement=pick(ContactRole.LAW_ENFORCEMENT, prefer_school=True),
        duty=duty,
    )


def calendar_for(session: Session, tip: Tip) -> tuple[District | None, BusinessCalendar | None]:
    if tip.school_id is None:
        return None, None
    school = session.get(School, tip.school_id)
    if school is None:
        return None, None
    district = session.get_one(District, school.district_id)
    return district, load_calendar(session, district.id)


def plan_input(session: Session, tip: Tip, now: datetime) -> plan_rules.PlanInput:
    district, calendar = calendar_for(session, tip)
    school = session.get(School, tip.school_id) if tip.school_id else None
    if calendar is None:
        deadline = tip.received_at + WALL_CLOCK_DEADLINES[tip.level]
    else:
        deadline = notify_deadline(tip.level.value, tip.received_at, calendar)
    return plan_rules.PlanInput(
        level=tip.level,
        arrival=tip.received_at,
        deadline=deadline,
        now=now,
        possible_crime=tip.possible_crime,
        # Unknown school: assume not in session, so law enforcement is in the plan.
        school_in_session=bool(calendar and calendar.school_in_session(tip.received_at)),
        style=district.escalation_style if district else EscalationStyle.SEQUENTIAL,
        sequential_wait=timedelta(seconds=district.sequential_wait_seconds if district else 150),
        review_hold=timedelta(seconds=district.review_hold_seconds if district else 0),
        reviewed=tip.reviewed_at is not None,
        directory=directory_for(session, school),
        next_business_time=calendar.next_business_time if calendar else (lambda t: t),
        duty_not_before=tip.school_expected_until if tip.school_id is None else None,
    )


def plan_tip(
    session: Session, tip_id: int, now: datetime, *, replan: bool = False
) -> PlanResult | None:
    """Plan the tip's notifications. Without ``replan`` a tip is planned once (the task may run
    twice); with it, what has not gone out is cancelled and planned again from arrival."""
    # Fresh from the database under the lock, not the session's copy: two planners of one tip
    # must see each other's plan_version.
    tip = session.scalar(
        select(Tip)
        .where(Tip.id == tip_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if tip is None:
        return None
    if tip.plan_version > 0 and not replan:
        return None
    version = tip.plan_version + 1
    inputs = plan_input(session, tip, now)
    result = plan_rules.plan(inputs)
    tip.plan_version = version
    tip.notify_deadline_at = inputs.deadline
    tip.updated_at = now

    legs = legs_of(session, tip.id)
    for kind in result.legs:
        legs[kind] = open_leg(session, tip, kind, now)
    for kind, leg in legs.items():
        if kind not in result.legs and leg.state is LegState.OPEN:
            leg.state, leg.updated_at = LegState.CANCELLED, now
    session.flush()
    cancelled = cancel_pending(
        session,
        tip_id=tip.id,
        now=now,
        before_version=version,
        reason=NotificationOutcome.REPLANNED,
    )

    # Who already heard of this tip at least as urgently: not told the same thing again.
    done: dict[tuple[NotificationChannel, int | None], int] = {}
    for channel, contact_id, level in session.execute(
        select(Notification.channel, Notification.contact_id, Notification.level).where(
            Notification.tip_id == tip.id,
            Notification.purpose == NotificationPurpose.ALERT,
            Notification.state.in_(DONE_STATES),
        )
    ):
        key = (channel, contact_id)
        done[key] = min(done.get(key, 9), LEVEL_RANK[level])
    rank = LEVEL_RANK[tip.level]
    rows = add_planned(
        session,
        tip,
        [i for i in result.notifications if done.get((i.channel, i.contact_id), 9) > rank],
        legs,
        now,
    )
    timeline.record(
        session,
        tip,
        TipEventKind.NOTIFICATIONS_PLANNED
        if version == 1
        else TipEventKind.NOTIFICATIONS_REPLANNED,
        at=now,
        version=version,
        level=tip.level.value,
        deadline=inputs.deadline.isoformat(),
        planned=len(rows),
        cancelled=cancelled,
        legs=sorted(k.value for k in result.legs),
    )
    if tip.school_id is None:
        raise_alert(
            session,
            tip=tip,
            kind=AlertKind.SCHOOL_UNKNOWN,
            message=f"Report {tip.report_number}: the school is unknown, so no one at "
            "a school can be notified. Find the school and set it on the tip.",
            key=f"school-unknown:{tip.id}:{version}",
            now=now,
        )
    duty = LegKind.DUTY in result.legs
    for kind, reason in result.gaps.items():
        raise_alert(
            session,
            tip=tip,
            kind=AlertKind.LEG_UNREACHABLE,
            message=f"Report {tip.report_number}: {kind.value} leg: {reason}"
            + ("; the duty supervisors are called instead." if duty else ". Call them."),
            key=f"leg-gap:{tip.id}:{kind.value}:{version}",
            now=now,
        )
    # Calls first: a principal's phone ringing matters more than the e-mail arriving first.
    order = {NotificationChannel.VOICE: 0, NotificationChannel.SMS: 1, NotificationChannel.EMAIL: 2}
    due = tuple(r.id for r in sorted(rows, key=lambda r: order[r.channel]) if r.due_at <= now)
    return PlanResult(version=version, created=len(rows), due_now=due)


#: Merging updates never holds a Critical one back longer than this.
CRITICAL_UPDATE_HOLD = timedelta(minutes=2)
#: The default of HOTLINE_UPDATE_MINUTES: one update per recipient at most this often.
UPDATE_EVERY = timedelta(minutes=10)


def notify_new_information(
    session: Session, tip: Tip, *, note: str, now: datetime, every: timedelta = UPDATE_EVERY
) -> list[int]:
    """Tell everyone who was already sent this tip that there is more, by the same channel
    (e-mail, text; calls are not repeated for an update), following the level's rules: texts
    for Standard and Other tips wait for business hours. Updates are merged: a recipient gets
    at most one per ``every`` (a Critical one is never held more than CRITICAL_UPDATE_HOLD),
    and the one that goes carries everything added since the last. Returns rows due now."""
    sent = session.execute(
        select(
            Notification.channel,
            Notification.contact_id,
            Notification.email,
            Notification.phone_number_id,
        )
        .where(
            Notification.tip_id == tip.id,
            Notification.purpose == NotificationPurpose.ALERT,
            Notification.state.in_(DONE_STATES),
            Notification.channel.in_((NotificationChannel.EMAIL, NotificationChannel.SMS)),
        )
        .distinct()
    ).all()
    if not sent:
        return []
    business_time = _business_time(session, tip)
    rows, merged = [], 0
    for channel, contact_id, email, phone_number_id in sent:
        updates = _updates_to(session, tip, channel, contact_id)
        if any(u.state in PENDING_NOTIFICATION_STATES for u in updates):
            merged += 1  # the update still waiting will carry this too
            continue
        last = max((u.sent_at for u in updates if u.sent_at is not None), default=None)
        due = now if last is None else max(now, last + every)
        if tip.level is TipLevel.CRITICAL:
            due = min(due, now + CRITICAL_UPDATE_HOLD)
        elif channel is NotificationChannel.SMS:
            due = max(business_time(due), now)
        row = planned_row(
            tip,
            channel=channel,
            contact_id=contact_id,
            email=email,
            phone_number_id=phone_number_id,
            purpose=NotificationPurpose.UPDATE,
            due_at=due,
            deadline_at=due + WALL_CLOCK_DEADLINES[TipLevel.CRITICAL],
            now=now,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    # Each piece of new information is one entry; its ``note`` is what the next update to each
    # person carries (update_notes).
    timeline.record(
        session,
        tip,
        TipEventKind.NOTIFICATIONS_UPDATE_PLANNED,
        at=now,
        note=note,
        planned=len(rows),
        merged=merged,
    )
    return [r.id for r in rows if r.due_at <= now]


def _updates_to(
    session: Session, tip: Tip, channel: NotificationChannel, contact_id: int | None
) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification).where(
                Notification.tip_id == tip.id,
                Notification.purpose == NotificationPurpose.UPDATE,
                Notification.channel == channel,
                Notification.contact_id == contact_id,
            )
        )
    )


def _business_time(session: Session, tip: Tip) -> Callable[[datetime], datetime]:
    """When texts to people may go for this tip's district (the wall clock without a school,
    whose recipients are the hotline's own duty supervisors)."""
    try:
        _, calendar = calendar_for(session, tip)
    except Exception:  # a broken calendar must not stop the update; e-mails still go at once
        log.exception("calendar of tip %s unreadable; its texts wait for the morning", tip.id)
        return lambda t: t + timedelta(hours=12)
    return calendar.next_business_time if calendar else (lambda t: t)


def update_notes(session: Session, row: Notification) -> list[str]:
    """What an update carries: every piece of information added since the recipient's last
    update (or, for the first, since the alert), oldest first."""
    since = session.scalar(
        select(func.max(Notification.sent_at)).where(
            Notification.tip_id == row.tip_id,
            Notification.purpose == NotificationPurpose.UPDATE,
            Notification.channel == row.channel,
            Notification.contact_id == row.contact_id,
            Notification.id != row.id,
            Notification.sent_at.is_not(None),
        )
    )
    query = select(TipEvent.data).where(
        TipEvent.tip_id == row.tip_id, TipEvent.kind == TipEventKind.NOTIFICATIONS_UPDATE_PLANNED
    )
    if since is not None:
        query = query.where(TipEvent.at > aggregate_time(since))
    return [str(data.get("note", "")) for data in session.scalars(query.order_by(TipEvent.id))]


def aggregate_time(value: datetime | str) -> datetime:
    """A ``max()`` of a time column as an aware UTC datetime: SQLite returns aggregates as
    text, without the column's type."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def describe_notes(notes: list[str]) -> str:
    """ "a recording was added; the reporter sent another text (3 times)"."""
    counts: dict[str, int] = {}
    for note in notes:
        counts[note] = counts.get(note, 0) + 1
    return "; ".join(n if c == 1 else f"{n} ({c} times)" for n, c in counts.items())


# When a tip cannot be planned ---------------------------------------------------------------

#: The longest wait between two attempts to plan a tip that keeps failing.
PLAN_RETRY_MAX = timedelta(minutes=10)


def plan_retry_delay(failures: int) -> timedelta:
    """15 s after the first failure, doubling, at most PLAN_RETRY_MAX."""
    return min(timedelta(seconds=15 * 2 ** min(failures - 1, 10)), PLAN_RETRY_MAX)


def record_plan_failure(session: Session, tip_id: int, now: datetime, error: str) -> list[int]:
    """Planning the tip raised (a broken calendar, a bug): try again later, tell the agents (one
    alert, updated at each failure), and give the tip to the duty line at once. Returns the
    duty rows due now."""
    tip = session.get_one(Tip, tip_id)
    tip.plan_failures += 1
    tip.plan_retry_at = now + plan_retry_delay(tip.plan_failures)
    tip.plan_error = error[:500]
    timeline.record(
        session,
        tip,
        TipEventKind.NOTIFICATIONS_PLAN_FAILED,
        at=now,
        error=error,
        failures=tip.plan_failures,
    )
    due = plan_duty_fallback(session, tip, now)
    raise_alert(
        session,
        tip=tip,
        kind=AlertKind.PLAN_FAILED,
        message=f"Report {tip.report_number} ({tip.level.value}): its notifications could not "
        f"be planned ({error[:200]}); the duty supervisors were notified instead. "
        f"Tried {tip.plan_failures} time(s); next try at {tip.plan_retry_at.isoformat()}.",
        key=f"plan-failed:{tip.id}",
        now=now,
        again=True,
    )
    return due


def plan_duty_fallback(session: Session, tip: Tip, now: datetime) -> list[int]:
    """The duty line for a tip that cannot be planned: no calendar and no school lookup on this
    path, so what broke the plan cannot break it too. Once per tip."""
    already = session.scalar(
        select(Notification.id)
        .join(Contact, Contact.id == Notification.contact_id)
        .where(Notification.tip_id == tip.id, Contact.role == ContactRole.DUTY)
        .limit(1)
    )
    if already is not None:
        return []
    deadline = tip.received_at + WALL_CLOCK_DEADLINES[tip.level]
    plan = plan_rules.duty_plan(
        plan_rules.Directory((), (), (), (), duty_recipients(session)),
        tip.level,
        tip.received_at,
        deadline,
        now,
    )
    legs = {kind: open_leg(session, tip, kind, now) for kind in plan.legs}
    rows = add_planned(session, tip, plan.notifications, legs, now)
    timeline.record(
        session,
        tip,
        TipEventKind.NOTIFICATIONS_DUTY_FALLBACK,
        at=now,
        planned=len(rows),
        deadline=deadline.isoformat(),
    )
    if not rows:
        raise_alert(
            session,
            tip=tip,
            kind=AlertKind.DUTY_UNREACHABLE,
            message=f"Report {tip.report_number}: nobody on the duty line can be notified "
            "either. Handle this report by hand.",
            key=f"duty-unreachable:{tip.id}",
            now=now,
        )
    return [r.id for r in rows if r.due_at <= now]
