"""No tip without a human, and never the same alarm twice: the duty line for tips the directory
cannot route, tips that cannot be planned at all, and legs with nobody left to call; bounded
escalation over a long unconfirmed hour."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dispatcher import plan_writer, tasks
from hotline.models import (
    Alert,
    Contact,
    ContactRole,
    LegKind,
    LegState,
    Notification,
    NotificationChannel,
    NotificationPurpose,
    NotificationState,
    PhoneNumber,
    Tip,
    TipLevel,
)
from hotline.telephony.ports import TelephonyError, TelephonyErrorKind
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.dispatch_world import World
from tests.support.twilio_driver import TwilioDriver

DUTY_LINES = ("+13125550180", "+13125550181")


def add_duty(world: World) -> list[int]:
    """Two supervisors on duty (the sample directory's own duty rows may differ)."""
    ids = []
    with world.services.db.session() as s:
        for role_contact in s.scalars(select(Contact).where(Contact.role == ContactRole.DUTY)):
            role_contact.active = False
        for priority, number in enumerate(DUTY_LINES, start=1):
            phone = s.scalar(select(PhoneNumber).where(PhoneNumber.e164 == number))
            if phone is None:
                phone = PhoneNumber(e164=number, created_at=world.clock.now())
                s.add(phone)
                s.flush()
            contact = Contact(
                district_id=None,
                school_id=None,
                role=ContactRole.DUTY,
                priority=priority,
                name=f"Supervisor {priority}",
                phone_number=phone,
                sms=True,
                email=f"duty{priority}@hotline.example.org",
                created_at=world.clock.now(),
                updated_at=world.clock.now(),
            )
            s.add(contact)
            s.flush()
            ids.append(contact.id)
    return ids


def called(world: World) -> list[str]:
    return [c.to for c in world.phone.calls]


def alerts(world: World, kind: str) -> list[Alert]:
    with world.services.db.sessionmaker() as s:
        return list(s.scalars(select(Alert).where(Alert.kind == kind).order_by(Alert.id)))


def test_a_critical_tip_without_a_school_reaches_the_duty_line_at_once(world: World) -> None:
    add_duty(world)
    tip_id = world.tip(None)
    world.run()
    legs = world.legs(tip_id)
    assert set(legs) == {LegKind.DUTY}
    # The first supervisor is called, both are texted and e-mailed, all at once.
    assert called(world) == [DUTY_LINES[0]]
    assert sorted(m.to for m in world.phone.messages) == sorted(DUTY_LINES)
    assert sorted(m.to[0] for m in world.mail.messages) == [
        "duty1@hotline.example.org",
        "duty2@hotline.example.org",
    ]
    # The second supervisor follows if the first does not confirm.
    world.clock.advance(150)
    world.run()
    assert called(world) == list(DUTY_LINES)
    # The agents are told why the duty line has it.
    messages = [a.message for a in alerts(world, "leg_unreachable")]
    assert any("duty supervisors are called instead" in m for m in messages)
    assert "school_unknown" in world.alerts()


def test_a_standard_tip_without_a_school_is_e_mailed_to_the_duty_line(world: World) -> None:
    add_duty(world)
    tip_id = world.tip(None, level=TipLevel.STANDARD, tip_type="bullying")
    world.clock.advance(timedelta(minutes=50))  # past the review hold
    world.run()
    rows = world.rows(tip_id)
    assert {r.channel for r in rows} == {NotificationChannel.EMAIL}
    assert sorted(m.to[0] for m in world.mail.messages) == [
        "duty1@hotline.example.org",
        "duty2@hotline.example.org",
    ]
    assert world.phone.calls == []


def test_a_tip_that_cannot_be_planned_goes_to_the_duty_line_by_every_channel(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan_tip raises (a bug, a broken calendar): the fallback looks up no calendar and no
    school, so whatever broke the plan cannot break it too."""
    add_duty(world)

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("calendar exploded")

    monkeypatch.setattr(tasks, "plan_tip", broken)
    monkeypatch.setattr(plan_writer, "load_calendar", broken)
    monkeypatch.setattr(plan_writer, "directory_for", broken)
    tip_id = world.tip()
    world.run()
    assert called(world) == [DUTY_LINES[0]]
    assert sorted(m.to for m in world.phone.messages) == sorted(DUTY_LINES)
    assert len(world.mail.messages) == 2
    [alert] = alerts(world, "plan_failed")
    assert "calendar exploded" in alert.message
    assert "duty supervisors" in alert.message
    with world.services.db.sessionmaker() as s:
        tip = s.get_one(Tip, tip_id)
        assert tip.plan_version == 0
        assert tip.plan_failures == 1
        assert tip.plan_retry_at == world.clock.now() + timedelta(seconds=15)

    # Retried with backoff, one alert updated (never a new one), the duty line told once.
    for _ in range(10):
        world.clock.advance(20)
        world.run()
    [alert] = alerts(world, "plan_failed")
    assert alert.occurrences >= 3
    assert alert.updated_at is not None
    with world.services.db.sessionmaker() as s:
        tip = s.get_one(Tip, tip_id)
        assert tip.plan_failures == alert.occurrences
        assert tip.plan_retry_at is not None
        gap = tip.plan_retry_at - world.clock.now()
        assert gap > timedelta(seconds=20)  # backing off
    assert len(world.mail.messages) == 2
    assert len(world.phone.messages) == 2

    # Once planning works again, the tip is planned as usual.
    monkeypatch.undo()
    world.clock.advance(timedelta(minutes=10))
    world.run()
    with world.services.db.sessionmaker() as s:
        assert s.get_one(Tip, tip_id).plan_version == 1
    assert "+13125550111" in called(world)


def test_one_districts_unplannable_tips_never_delay_another_districts_critical_tip(
    world: World,
) -> None:
    add_duty(world)
    # Foothills' calendar is broken: no business hours on any day, so nothing can be planned.
    world.set_district("foothills", business_hours={})
    broken = [world.tip("2201"), world.tip("2201", level=TipLevel.STANDARD, tip_type="drugs")]
    ok = world.tip("1101")
    report = world.run()
    assert report.failed == []
    assert "+13125550111" in called(world)  # Lakeview's principal, at once
    assert world.legs(ok)[LegKind.POC].state is LegState.OPEN
    with world.services.db.sessionmaker() as s:
        assert [s.get_one(Tip, t).plan_failures for t in broken] == [1, 1]
    # The broken district's Critical tip is on the duty line; both are on the agents' feed.
    assert world.legs(broken[0])[LegKind.DUTY].state is LegState.OPEN
    assert DUTY_LINES[0] in called(world)
    assert len(alerts(world, "plan_failed")) == 2


def test_a_leg_with_nobody_left_to_call_does_not_restart_forever(world: World) -> None:
    """The PSAP's only line is refused for good on the first call: the leg has nobody left. It
    starts no new rounds; the duty line takes over, and the agents hear of it once."""
    add_duty(world)
    world.phone.fail_number(
        "+13125550190",
        TelephonyError(TelephonyErrorKind.PERMANENT_NUMBER, "invalid number", code=21217),
    )
    tip_id = world.tip()
    for _ in range(60):
        world.run()
        world.clock.advance(60)
    legs = world.legs(tip_id)
    assert legs[LegKind.PSAP].round == 1
    assert legs[LegKind.PSAP].state is LegState.OPEN
    assert LegKind.DUTY in legs
    [exhausted] = [a for a in alerts(world, "leg_exhausted") if "psap" in a.message]
    assert exhausted.occurrences == 1
    assert "nobody on it can be called" in exhausted.message
    assert world.events(tip_id).count("leg.exhausted") == 1


def escalation_batches(world: World, tip_id: int) -> list[object]:
    with world.services.db.sessionmaker() as s:
        return list(
            s.scalars(
                select(Notification.created_at)
                .where(
                    Notification.tip_id == tip_id,
                    Notification.purpose == NotificationPurpose.ESCALATION,
                    Notification.channel == NotificationChannel.EMAIL,
                )
                .distinct()
            )
        )


def test_an_hour_with_nobody_callable_sends_the_first_e_mails_and_nothing_more(
    world: World,
) -> None:
    """Every number is refused for calls and nobody is on duty: an alert for each leg that
    cannot be called, the three principal/AP/SRO e-mails, and then silence from the system
    (no rounds, no escalation e-mails, no new alerts) for the whole hour."""
    with world.services.db.session() as s:
        for phone in s.scalars(select(PhoneNumber)):
            phone.bad_for_calls = True
        for duty in s.scalars(select(Contact).where(Contact.role == ContactRole.DUTY)):
            duty.active = False
    tip_id = world.tip()
    for _ in range(60):
        world.run()
        world.clock.advance(60)
    assert world.phone.calls == []
    assert len(world.mail.messages) == 3
    assert escalation_batches(world, tip_id) == []
    assert world.alerts().count("leg_unreachable") == 3  # POC, PSAP, and the duty line
    assert "leg_exhausted" not in world.alerts()


def test_an_hour_nobody_confirms_sends_escalation_e_mails_at_most_every_15_minutes(
    world: World,
) -> None:
    """Every call rings out (no answer, as their status callbacks say): every leg goes around
    again and again, but the district and police hear of it at most four times in the hour,
    and the agents' alert is one per leg, updated."""
    add_duty(world)
    tip_id = world.tip()
    twilio = TwilioDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    seen: set[str] = set()
    for _ in range(120):
        world.run()
        for sid, request in zip(world.phone.call_sids, world.phone.calls, strict=True):
            if sid not in seen and request.status_callback:
                seen.add(sid)
                response = twilio.post(
                    request.status_callback.replace(TEST_PUBLIC_BASE_URL, ""),
                    {"CallSid": sid, "CallStatus": "no-answer", "SequenceNumber": "3",
                     "Direction": "outbound-api"},
                )  # fmt: skip
                assert response.status_code == 200
        world.clock.advance(30)
    legs = world.legs(tip_id)
    assert legs[LegKind.PSAP].round >= 4
    assert legs[LegKind.POC].round >= 2
    batches = escalation_batches(world, tip_id)
    assert 1 <= len(batches) <= 4
    per_batch = 3  # the three district contacts with an address (the police desk has none)
    with world.services.db.sessionmaker() as s:
        sent = s.scalar(
            select(func.count())
            .select_from(Notification)
            .where(
                Notification.tip_id == tip_id,
                Notification.purpose == NotificationPurpose.ESCALATION,
                Notification.channel == NotificationChannel.EMAIL,
                Notification.state == NotificationState.SENT,
            )
        )
    assert sent == per_batch * len(batches)
    exhausted = alerts(world, "leg_exhausted")
    assert len(exhausted) == len({a.dedupe_key for a in exhausted}) <= len(legs)
    psap_alert = next(a for a in exhausted if "psap" in a.message)
    assert psap_alert.occurrences == legs[LegKind.PSAP].round - 1


def test_one_broken_leg_never_stops_the_watchdog_for_the_others(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dispatcher import watchdog
    from hotline.models import School

    broken_school = world.tip("2201")
    fine = world.tip("1101")
    world.run()
    real = watchdog.directory_for

    def directory_for(session, school):  # type: ignore[no-untyped-def]
        if isinstance(school, School) and school.code == "2201":
            raise RuntimeError("directory row unreadable")
        return real(session, school)

    monkeypatch.setattr(watchdog, "directory_for", directory_for)
    for _ in range(30):
        world.clock.advance(60)
        world.run()
    assert world.legs(fine)[LegKind.PSAP].round >= 2
    assert world.legs(broken_school)[LegKind.PSAP].round == 1
    health = world.app.test_client().get("/healthz").get_json()
    assert health["watchdog"]["ok"] is False
    assert "failed on" in health["watchdog"]["detail"]
    # The agents hear of each leg the watchdog cannot chase, once.
    failed = alerts(world, "watchdog_failed")
    assert failed
    assert all(a.tip_id == broken_school for a in failed)
    assert all(a.occurrences == 1 for a in failed)
    assert len({a.dedupe_key for a in failed}) == len(failed)


def test_a_tip_whose_fallback_fails_too_never_keeps_the_others_unplanned(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_duty(world)
    first, second = world.tip("2201"), world.tip("1102")

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("calendar exploded")

    real_fallback = plan_writer.plan_duty_fallback

    def fallback(session, tip, now):  # type: ignore[no-untyped-def]
        if tip.id == first:
            raise RuntimeError("duty rows refused")
        return real_fallback(session, tip, now)

    monkeypatch.setattr(tasks, "plan_tip", broken)
    monkeypatch.setattr(plan_writer, "plan_duty_fallback", fallback)
    with world.app.app_context():
        report = tasks.sweep(world.services)
    assert report.failed == [f"plan:{first}"]
    assert report.planned_tips == [second]
    [by_hand] = [a for a in alerts(world, "plan_failed") if a.tip_id == first]
    assert "Handle this report by hand" in by_hand.message
    assert world.legs(second)[LegKind.DUTY].state is LegState.OPEN
    duty_calls = world.rows(second, channel=NotificationChannel.VOICE, position=0)
    assert [r.id for r in duty_calls if r.id in report.enqueued] == [duty_calls[0].id]
