"""Who must hear about a tip, by which channel, and when: a pure function of the tip, the
district's settings and its directory (DESIGN.md section 2).

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


def _plan_critical(tip: PlanInput) -> Plan:
    start = max(tip.arrival, tip.now)
    out: list[Planned] = []
    gaps: dict[LegKind, str] = {}
    for r in _email_recipients(tip.directory):
        out.append(
            Planned(NotificationChannel.EMAIL, r.contact_id, start, tip.deadline, email=r.email)
        )
    for r in tip.directory.school_contacts or tip.directory.district_contacts:
        if r.textable and r.phone_number_id:
            out.append(
                Planned(
                    NotificationChannel.SMS,
                    r.contact_id,
                    start,
                    tip.deadline,
                    leg=LegKind.POC,
                    phone_number_id=r.phone_number_id,
                )
            )

    legs = {LegKind.POC, LegKind.PSAP}
    tiers = poc_tiers(tip.directory, tip.style)
    if not tiers:
        gaps[LegKind.POC] = "no school or district contact can be called"
    wait = chain_wait(len(tiers), tip.sequential_wait, tip.arrival, tip.deadline)
    for position, tier in enumerate(tiers):
        due = max(tip.arrival + position * wait, tip.now)
        for r in tier:
            out.append(
                Planned(
                    NotificationChannel.VOICE,
                    r.contact_id,
                    due,
                    tip.deadline,
                    leg=LegKind.POC,
                    position=position,
                    phone_number_id=r.phone_number_id,
                )
            )

    psaps = callable_only(tip.directory.psaps)
    if not psaps:
        gaps[LegKind.PSAP] = "no PSAP line can be called"
    for r in psaps:
        out.append(
            Planned(
                NotificationChannel.VOICE,
                r.contact_id,
                start,
                tip.deadline,
                leg=LegKind.PSAP,
                phone_number_id=r.phone_number_id,
            )
        )

    if not tip.school_in_session or tip.possible_crime:
        legs.add(LegKind.LAW_ENFORCEMENT)
        law = callable_only(tip.directory.law_enforcement)
        if not law:
            gaps[LegKind.LAW_ENFORCEMENT] = "no law-enforcement line can be called"
        for r in law:
            out.append(
                Planned(
                    NotificationChannel.VOICE,
                    r.contact_id,
                    start,
                    tip.deadline,
                    leg=LegKind.LAW_ENFORCEMENT,
                    phone_number_id=r.phone_number_id,
                )
            )
        for r in tip.directory.law_enforcement:
            if r.email:
                out.append(
                    Planned(
                        NotificationChannel.EMAIL, r.contact_id, start, tip.deadline, email=r.email
                    )
                )
    return Plan(frozenset(legs), tuple(out), gaps)


def _plan_held(tip: PlanInput) -> Plan:
    """Standard and Other: wait for an agent's review, but never past the deadline; notification
    does not depend on an agent being free."""
    if tip.reviewed:
        release = tip.now
    else:
        release = min(tip.arrival + tip.review_hold, tip.deadline - HOLD_MARGIN)
    release = max(release, tip.arrival, tip.now)
    out: list[Planned] = []
    for r in _email_recipients(tip.directory):
        out.append(
            Planned(NotificationChannel.EMAIL, r.contact_id, release, tip.deadline, email=r.email)
        )
    if tip.level is TipLevel.STANDARD:
        texting = max(tip.next_business_time(release), tip.now)
        for r in tip.directory.school_contacts or tip.directory.district_contacts:
            if r.textable and r.phone_number_id:
                out.append(
                    Planned(
                        NotificationChannel.SMS,
                        r.contact_id,
                        texting,
                        max(tip.deadline, texting),
                        phone_number_id=r.phone_number_id,
                    )
                )
        if tip.possible_crime:
            for r in tip.directory.law_enforcement:
                if r.email:
                    out.append(
                        Planned(
                            NotificationChannel.EMAIL,
                            r.contact_id,
                            release,
                            tip.deadline,
                            email=r.email,
                        )
                    )
    return Plan(frozenset(), tuple(out), {})
