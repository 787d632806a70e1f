"""The pure planner, without a database: who is told, by which channel, when, for each level,
escalation style, school session and crime flag."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher import plan_rules
from dispatcher.plan_rules import Directory, PlanInput, Recipient
from hotline.models import EscalationStyle, LegKind, NotificationChannel, TipLevel

ARRIVAL = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
V, S, E = NotificationChannel.VOICE, NotificationChannel.SMS, NotificationChannel.EMAIL


def person(
    contact_id: int, *, email: bool = True, textable: bool = False, callable: bool = True
) -> Recipient:
    return Recipient(
        contact_id=contact_id,
        priority=contact_id % 10,
        phone_number_id=contact_id,
        callable=callable,
        textable=textable,
        email=f"c{contact_id}@example.org" if email else None,
    )


SCHOOL = [person(11, textable=True), person(12), person(13)]
DISTRICT = [person(21), person(22)]
PSAP = [person(31, email=False)]
POLICE = [person(41)]
DUTY = [person(51, textable=True), person(52)]
FULL = Directory(SCHOOL, DISTRICT, PSAP, POLICE, DUTY)


def inputs(
    level: TipLevel = TipLevel.CRITICAL,
    *,
    directory: Directory = FULL,
    style: EscalationStyle = EscalationStyle.SEQUENTIAL,
    in_session: bool = True,
    crime: bool = False,
    reviewed: bool = False,
    now: datetime = ARRIVAL,
    business: timedelta = timedelta(0),
) -> PlanInput:
    deadline = {
        TipLevel.CRITICAL: ARRIVAL + timedelta(minutes=20),
        TipLevel.STANDARD: ARRIVAL + timedelta(hours=1),
        TipLevel.OTHER: ARRIVAL + timedelta(hours=4),
    }[level]
    return PlanInput(
        level=level,
        arrival=ARRIVAL,
        deadline=deadline,
        now=now,
        possible_crime=crime,
        school_in_session=in_session,
        style=style,
        sequential_wait=timedelta(seconds=150),
        review_hold=timedelta(minutes=15),
        reviewed=reviewed,
        directory=directory,
        next_business_time=lambda t: t + business,
    )


def of(plan: plan_rules.Plan, channel: NotificationChannel) -> list[plan_rules.Planned]:
    return [n for n in plan.notifications if n.channel is channel]


def test_critical_sequential_calls_the_chain_one_after_the_other() -> None:
    plan = plan_rules.plan(inputs())
    assert plan.legs == {LegKind.POC, LegKind.PSAP}
    assert not plan.gaps
    poc = [n for n in of(plan, V) if n.leg is LegKind.POC]
    assert [n.contact_id for n in poc] == [11, 12, 13, 21, 22]
    assert [n.due_at - ARRIVAL for n in poc] == [timedelta(seconds=150 * i) for i in range(5)]
    assert all(n.deadline_at == ARRIVAL + timedelta(minutes=20) for n in plan.notifications)
    [psap] = [n for n in of(plan, V) if n.leg is LegKind.PSAP]
    assert psap.contact_id == 31
    assert psap.due_at == ARRIVAL
    assert [n.contact_id for n in of(plan, S)] == [11]


def test_critical_parallel_calls_the_school_together_then_the_district() -> None:
    plan = plan_rules.plan(inputs(style=EscalationStyle.PARALLEL))
    poc = [n for n in of(plan, V) if n.leg is LegKind.POC]
    assert {(n.contact_id, n.position) for n in poc} == {
        (11, 0), (12, 0), (13, 0), (21, 1), (22, 1),
    }  # fmt: skip


def test_a_long_chain_is_squeezed_to_finish_before_the_deadline() -> None:
    long = Directory([person(100 + i) for i in range(10)], DISTRICT, PSAP, POLICE)
    plan = plan_rules.plan(inputs(directory=long))
    last = max(n.due_at for n in of(plan, V))
    assert last <= ARRIVAL + timedelta(minutes=20) - plan_rules.CHAIN_MARGIN


@pytest.mark.parametrize(
    ("in_session", "crime", "police"),
    [(True, False, False), (False, False, True), (True, True, True), (False, True, True)],
)
def test_law_enforcement_is_a_leg_out_of_session_or_for_a_possible_crime(
    in_session: bool, crime: bool, police: bool
) -> None:
    plan = plan_rules.plan(inputs(in_session=in_session, crime=crime))
    assert (LegKind.LAW_ENFORCEMENT in plan.legs) is police
    assert (41 in {n.contact_id for n in of(plan, V)}) is police
    assert ("c41@example.org" in {n.email for n in of(plan, E)}) is police


def test_critical_e_mails_every_recipient_with_an_address_once() -> None:
    shared = Recipient(31, 1, 31, True, False, "dispatch@county.example.org")
    desk = Recipient(41, 1, 41, True, False, "DISPATCH@county.example.org")
    directory = Directory(SCHOOL, DISTRICT, [shared], [desk])
    plan = plan_rules.plan(inputs(directory=directory, in_session=False))
    addresses = [n.email for n in of(plan, E)]
    # The school's contacts and the PSAP's mailbox, shared with the police desk: one e-mail.
    assert addresses == [
        "c11@example.org", "c12@example.org", "c13@example.org", "dispatch@county.example.org",
    ]  # fmt: skip


def test_critical_with_nobody_callable_goes_to_the_duty_line_at_once() -> None:
    nobody = Directory([], [], [], [], DUTY)
    plan = plan_rules.plan(inputs(directory=nobody))
    assert plan.legs == {LegKind.DUTY}
    assert set(plan.gaps) == {LegKind.POC, LegKind.PSAP}
    duty = of(plan, V)
    assert [(n.contact_id, n.leg) for n in duty] == [(51, LegKind.DUTY), (52, LegKind.DUTY)]
    assert duty[0].due_at == ARRIVAL
    assert [n.contact_id for n in of(plan, S)] == [51]
    assert [n.email for n in of(plan, E)] == ["c51@example.org", "c52@example.org"]


def test_the_duty_line_waits_while_the_reporter_is_asked_for_the_school() -> None:
    nobody = Directory([], [], [], [], DUTY)
    asked_until = ARRIVAL + timedelta(minutes=3)
    plan = plan_rules.plan(replace(inputs(directory=nobody), duty_not_before=asked_until))
    assert plan.legs == {LegKind.DUTY}
    assert min(n.due_at for n in plan.notifications) == asked_until
    first, second = of(plan, V)
    assert first.due_at == asked_until
    assert second.due_at > asked_until  # the chain starts after the wait, it is not squeezed
    assert all(n.deadline_at == ARRIVAL + timedelta(minutes=20) for n in of(plan, V))


def test_a_past_wait_for_the_school_holds_nothing() -> None:
    nobody = Directory([], [], [], [], DUTY)
    later = ARRIVAL + timedelta(minutes=5)
    held = replace(inputs(directory=nobody, now=later), duty_not_before=ARRIVAL)
    assert of(plan_rules.plan(held), V)[0].due_at == later


def test_only_the_unreachable_leg_is_covered_by_the_duty_line() -> None:
    bad_psap = Directory(SCHOOL, DISTRICT, [person(31, callable=False)], POLICE, DUTY)
    plan = plan_rules.plan(inputs(directory=bad_psap))
    assert plan.legs == {LegKind.POC, LegKind.DUTY}
    assert set(plan.gaps) == {LegKind.PSAP}


def test_nobody_at_all_is_a_gap_of_every_leg_and_of_the_duty_line() -> None:
    plan = plan_rules.plan(inputs(directory=Directory([], [], [], [])))
    assert plan.legs == frozenset()
    assert plan.notifications == ()
    assert set(plan.gaps) == {LegKind.POC, LegKind.PSAP, LegKind.DUTY}


def test_standard_waits_for_the_review_hold_and_texts_in_business_hours() -> None:
    plan = plan_rules.plan(inputs(TipLevel.STANDARD, business=timedelta(hours=9)))
    assert plan.legs == frozenset()
    emails = of(plan, E)
    assert {n.contact_id for n in emails} == {11, 12, 13}
    assert all(n.due_at == ARRIVAL + timedelta(minutes=15) for n in emails)
    [text] = of(plan, S)
    assert text.due_at == ARRIVAL + timedelta(minutes=15, hours=9)
    assert of(plan, V) == []


def test_a_reviewed_standard_tip_goes_at_once_and_tells_the_police_when_flagged() -> None:
    now = ARRIVAL + timedelta(minutes=3)
    plan = plan_rules.plan(inputs(TipLevel.STANDARD, reviewed=True, crime=True, now=now))
    assert all(n.due_at == now for n in of(plan, E))
    assert "c41@example.org" in {n.email for n in of(plan, E)}


def test_other_is_e_mail_only_before_its_deadline() -> None:
    plan = plan_rules.plan(inputs(TipLevel.OTHER))
    assert {n.channel for n in plan.notifications} == {E}
    assert all(n.due_at <= n.deadline_at - plan_rules.HOLD_MARGIN for n in plan.notifications)


def test_without_a_school_standard_is_e_mailed_to_the_duty_line() -> None:
    plan = plan_rules.plan(inputs(TipLevel.STANDARD, directory=Directory([], [], [], [], DUTY)))
    assert [n.email for n in plan.notifications] == ["c51@example.org", "c52@example.org"]


def test_the_duty_plan_needs_nothing_but_the_duty_line() -> None:
    duty = Directory([], [], [], [], DUTY)
    deadline = ARRIVAL + timedelta(minutes=20)
    plan = plan_rules.duty_plan(duty, TipLevel.CRITICAL, ARRIVAL, deadline, ARRIVAL)
    assert plan.legs == {LegKind.DUTY}
    assert {n.channel for n in plan.notifications} == {V, S, E}
    standard = plan_rules.duty_plan(duty, TipLevel.STANDARD, ARRIVAL, deadline, ARRIVAL)
    assert {n.channel for n in standard.notifications} == {E}
    assert not standard.legs


def test_a_replan_never_schedules_into_the_past() -> None:
    later = ARRIVAL + timedelta(minutes=7)
    plan = plan_rules.plan(inputs(now=later))
    assert all(n.due_at >= later for n in plan.notifications)
