"""Who must hear about a tip, by which channel, and when: a pure function of the tip, the
district's settings and its directory.

Critical: e-mail to every point of contact at once; texts to those who opted in; three legs of
calls, each chased until someone on it confirms: the school's points of contact (parallel or
sequential, falling back to the district's contacts), the PSAP, and law enforcement when the
school is not in session or the tip is flagged as a possible crime. Standard and Other: e-mail
(texts in business hours for Standard) after a review hold, always before the deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hotline.models import (
    EscalationStyle,
    LegKind,
    NotificationChannel,
    NotificationPurpose,
    TipLevel,
)

#: The last call of a leg's chain must be placed at least this long before the deadline.
CHAIN_MARGIN = timedelta(minutes=2)
#: Held Standard/Other e-mails still go at least this long before their deadline.
HOLD_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True)
class Recipient:
    contact_id: int
    priority: int
    phone_number_id: int | None
    #: The number is not marked unreachable for calls.
    callable: bool
    #: The contact asked for texts, and the number takes them (not opted out, not a landline).
    textable: bool
    email: str | None


@dataclass(frozen=True)
class Directory:
    """The people a tip's school and district have, each list in priority order."""

    school_contacts: Sequence[Recipient]
    district_contacts: Sequence[Recipient]
    psaps: Sequence[Recipient]
    law_enforcement: Sequence[Recipient]
    #: The hotline's own supervisors on duty: whoever else cannot be reached, they are.
    duty: Sequence[Recipient] = ()


@dataclass(frozen=True)
class PlanInput:
    level: TipLevel
    arrival: datetime
    #: Every required recipient must have been sent its notification by then.
    deadline: datetime
    #: Planning time: nothing is due before it (a re-plan does not send into the past).
    now: datetime
    possible_crime: bool
    school_in_session: bool
    style: EscalationStyle
    sequential_wait: timedelta
    review_hold: timedelta
    #: An agent released the tip: no more holding.
    reviewed: bool
    directory: Directory
    #: The next moment calls and texts to people may go for Standard and Other tips.
    next_business_time: Callable[[datetime], datetime]
    #: The reporter is being asked for the school until then (the text bot): the duty line is
    #: not called before, since the answer would send the tip to the school itself.
    duty_not_before: datetime | None = None


@dataclass(frozen=True)
class Planned:
    channel: NotificationChannel
    contact_id: int
    due_at: datetime
    deadline_at: datetime
    leg: LegKind | None = None
    position: int = 0
    phone_number_id: int | None = None
    email: str | None = None
    purpose: NotificationPurpose = NotificationPurpose.ALERT


@dataclass(frozen=True)
class Plan:
    legs: frozenset[LegKind]
    notifications: tuple[Planned, ...]
    #: Why a leg has nobody to call (for the agents): leg → reason.
    gaps: dict[LegKind, str] = field(default_factory=dict)


def callable_only(recipients: Sequence[Recipient]) -> list[Recipient]:
    """Those with a number that is not marked unreachable for calls."""
    return [r for r in recipients if r.callable and r.phone_number_id]


def poc_tiers(directory: Directory, style: EscalationStyle) -> list[list[Recipient]]:
    """The POC leg's chain: who is called together, tier after tier."""
    school = callable_only(directory.school_contacts)
    district = callable_only(directory.district_contacts)
    if style is EscalationStyle.PARALLEL:
        return [tier for tier in (school, district) if tier]
    return [[r] for r in school] + [[r] for r in district]


def tiers_for(kind: LegKind, directory: Directory, style: EscalationStyle) -> list[list[Recipient]]:
    """Who is called on a leg, tier after tier: the one rule for the planner and for every
    later round. Empty when nobody on it can be called."""
    if kind is LegKind.POC:
        return poc_tiers(directory, style)
    if kind is LegKind.DUTY:
        # The hotline's supervisors, one after the other (sequential, whatever the district).
        return [[r] for r in callable_only(directory.duty)]
    people = directory.psaps if kind is LegKind.PSAP else directory.law_enforcement
    return [tier] if (tier := callable_only(people)) else []


def round_calls(
    kind: LegKind,
    tiers: Sequence[Sequence[Recipient]],
    *,
    start: datetime,
    deadline: datetime,
    wait: timedelta,
    now: datetime,
) -> list[Planned]:
    """The calls of one round of a leg: tier ``n`` is due ``n`` waits after ``start``."""
    return [
        Planned(
            NotificationChannel.VOICE,
            r.contact_id,
            max(start + position * wait, now),
            deadline,
            leg=kind,
            position=position,
            phone_number_id=r.phone_number_id,
        )
        for position, tier in enumerate(tiers)
        for r in tier
    ]


def chain_wait(
    tiers: int, configured: timedelta, arrival: datetime, deadline: datetime
) -> timedelta:
    """The wait between tiers: the district's, shortened so the last tier is called at least
    CHAIN_MARGIN before the deadline."""
    if tiers <= 1:
        return configured
    room = (deadline - CHAIN_MARGIN - arrival) / (tiers - 1)
    return max(timedelta(seconds=30), min(configured, room))


def plan(tip: PlanInput) -> Plan:
    if tip.level is TipLevel.CRITICAL:
        return _plan_critical(tip)
    return _plan_held(tip)


def _email_recipients(directory: Directory) -> list[Recipient]:
    """Every point of contact with an address: the school's, or the district's when the school
    has none (or is unknown)."""
    school = [r for r in directory.school_contacts if r.email]
    return school or [r for r in directory.district_contacts if r.email]


#: Why nobody on a leg can be called, for the agents.
GAP_REASONS = {
    LegKind.POC: "no school or district contact can be called",
    LegKind.PSAP: "no PSAP line can be called",
    LegKind.LAW_ENFORCEMENT: "no law-enforcement line can be called",
    LegKind.DUTY: "no duty supervisor can be called either",
}


def _emails(recipients: Sequence[Recipient], at: datetime, deadline: datetime) -> list[Planned]:
    return [
        Planned(NotificationChannel.EMAIL, r.contact_id, at, deadline, email=r.email)
        for r in recipients
        if r.email
    ]


def _one_per_address(recipients: Sequence[Recipient]) -> list[Recipient]:
    """One e-mail per address (a PSAP and the police desk may share a mailbox)."""
    seen: set[str] = set()
    out = []
    for r in recipients:
        if r.email and r.email.casefold() not in seen:
            seen.add(r.email.casefold())
            out.append(r)
    return out


def _texts(
    recipients: Sequence[Recipient],
    at: datetime,
    deadline: datetime,
    leg: LegKind | None = None,
) -> list[Planned]:
    return [
        Planned(
            NotificationChannel.SMS,
            r.contact_id,
            at,
            deadline,
            leg=leg,
            phone_number_id=r.phone_number_id,
        )
        for r in recipients
        if r.textable and r.phone_number_id
    ]


def required_legs(tip: PlanInput) -> list[LegKind]:
    """The legs a Critical tip must have confirmed: the school's points of contact and the PSAP
    always, law enforcement when the school is not in session or the tip may be a crime."""
    legs = [LegKind.POC, LegKind.PSAP]
    if not tip.school_in_session or tip.possible_crime:
        legs.append(LegKind.LAW_ENFORCEMENT)
    return legs


def _plan_critical(tip: PlanInput) -> Plan:
    start = max(tip.arrival, tip.now)
    directory = tip.directory
    # Every recipient of the legs with an address is e-mailed too: the points of contact, the
    # PSAP, and law enforcement when its leg is required.
    mailed = [*_email_recipients(directory), *directory.psaps]
    if LegKind.LAW_ENFORCEMENT in required_legs(tip):
        mailed += directory.law_enforcement
    out: list[Planned] = _emails(_one_per_address(mailed), start, tip.deadline)
    out += _texts(directory.school_contacts or directory.district_contacts, start, tip.deadline,
                  LegKind.POC)  # fmt: skip
    legs: set[LegKind] = set()
    gaps: dict[LegKind, str] = {}
    for kind in required_legs(tip):
        tiers = tiers_for(kind, directory, tip.style)
        if not tiers:
            gaps[kind] = GAP_REASONS[kind]
            continue
        legs.add(kind)
        wait = (
            chain_wait(len(tiers), tip.sequential_wait, tip.arrival, tip.deadline)
            if kind is LegKind.POC
            else tip.sequential_wait
        )
        out += round_calls(
            kind, tiers, start=tip.arrival, deadline=tip.deadline, wait=wait, now=tip.now
        )
    if gaps:
        # No tip without a human: the hotline's own supervisors on duty are called instead.
        # The duty chain starts when the wait for the reporter's answer ends, not before.
        duty_start = max(tip.arrival, tip.duty_not_before or tip.arrival)
        out += _duty(directory, duty_start, tip.deadline, tip.now, tip.sequential_wait)
        if tiers_for(LegKind.DUTY, directory, tip.style):
            legs.add(LegKind.DUTY)
        else:
            gaps[LegKind.DUTY] = GAP_REASONS[LegKind.DUTY]
    return Plan(frozenset(legs), tuple(out), gaps)


def _duty(
    directory: Directory, arrival: datetime, deadline: datetime, now: datetime, wait: timedelta
) -> list[Planned]:
    """The duty leg of a Critical tip: calls (one supervisor after the other), texts and
    e-mails, all at once."""
    start = max(arrival, now)
    tiers = tiers_for(LegKind.DUTY, directory, EscalationStyle.SEQUENTIAL)
    wait = chain_wait(len(tiers), wait, arrival, deadline)
    return [
        *round_calls(LegKind.DUTY, tiers, start=arrival, deadline=deadline, wait=wait, now=now),
        *_texts(directory.duty, start, deadline, LegKind.DUTY),
        *_emails(directory.duty, start, deadline),
    ]


def duty_plan(
    directory: Directory, level: TipLevel, arrival: datetime, deadline: datetime, now: datetime
) -> Plan:
    """What the duty line gets when a tip cannot be planned at all: no calendar, no school,
    nothing that could fail again. Critical: calls, texts and e-mails at once; otherwise
    e-mail."""
    if level is not TipLevel.CRITICAL:
        return Plan(frozenset(), tuple(_emails(directory.duty, max(arrival, now), deadline)))
    rows = _duty(directory, arrival, deadline, now, DUTY_WAIT)
    legs = frozenset({LegKind.DUTY}) if any(r.leg for r in rows) else frozenset()
    return Plan(legs, tuple(rows))


#: How long a duty supervisor has to confirm before the next is called (shortened to fit).
DUTY_WAIT = timedelta(seconds=150)


def _plan_held(tip: PlanInput) -> Plan:
    """Standard and Other: wait for an agent's review, but never past the deadline; notification
    does not depend on an agent being free."""
    if tip.reviewed:
        release = tip.now
    else:
        release = min(tip.arrival + tip.review_hold, tip.deadline - HOLD_MARGIN)
    release = max(release, tip.arrival, tip.now)
    recipients = _email_recipients(tip.directory)
    # Nobody at a school or district to e-mail (no school): the duty supervisors are.
    out: list[Planned] = _emails(recipients or tip.directory.duty, release, tip.deadline)
    if tip.level is TipLevel.STANDARD:
        texting = max(tip.next_business_time(release), tip.now)
        out += _texts(
            tip.directory.school_contacts or tip.directory.district_contacts,
            texting,
            max(tip.deadline, texting),
        )
        if tip.possible_crime:
            out += _emails(tip.directory.law_enforcement, release, tip.deadline)
    return Plan(frozenset(), tuple(out), {})
