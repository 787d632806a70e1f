"""The dispatcher end to end in one process: planning, sending, confirming, the watchdog, with
the recording fakes and a manual clock (a 20-minute escalation runs in milliseconds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from dispatcher import tasks
from dispatcher.confirm import confirm
from dispatcher.outbox import LEASE, claim, start_sending
from dispatcher.plan_writer import plan_tip
from dispatcher.watchdog import ROUND_GRACE, UNCONFIRMED_ALERT_AFTER
from hotline.core.tips import attach_recording, change_classification
from hotline.email import EmailError, EmailErrorKind
from hotline.models import (
    ActorType,
    Contact,
    EscalationStyle,
    LegKind,
    LegState,
    NotificationChannel,
    NotificationPurpose,
    NotificationState,
    PhoneNumber,
    Tip,
    TipLevel,
)
from hotline.telephony.ports import TelephonyError, TelephonyErrorKind
from tests.support.dispatch_world import (
    CHICAGO,
    FRIDAY_EVENING,
    SATURDAY_NIGHT,
    SCHOOL_HOURS,
    World,
)


def called(world: World) -> list[str]:
    return [c.to for c in world.phone.calls]


# Planning ------------------------------------------------------------------------------------


def test_critical_in_session_sequential(world: World) -> None:
    tip_id = world.tip()
    world.run()
    start = SCHOOL_HOURS
    legs = world.legs(tip_id)
    assert set(legs) == {LegKind.POC, LegKind.PSAP}  # in session, no crime flag: no police
    emails = world.rows(tip_id, channel=NotificationChannel.EMAIL)
    assert len(emails) == 3
    assert all(r.due_at == start for r in emails)
    assert {m.to[0] for m in world.mail.messages} == {
        "a.brooks@lakeview.example.org",
        "d.kim@lakeview.example.org",
        "l.ortega@lakeview.example.org",
    }
    assert len(world.rows(tip_id, channel=NotificationChannel.SMS)) == 3
    poc = world.rows(tip_id, channel=NotificationChannel.VOICE, leg_id=legs[LegKind.POC].id)
    # Principal, assistant principal, SRO, then the three district contacts, one at a time.
    assert [r.position for r in poc] == [0, 1, 2, 3, 4, 5]
    waits = [r.due_at - start for r in poc]
    assert waits == [timedelta(seconds=150 * i) for i in range(6)]
    assert max(r.due_at for r in poc) <= start + timedelta(minutes=18)
    assert all(r.deadline_at == start + timedelta(minutes=20) for r in poc)
    # Only the first is called now, with the PSAP.
    assert called(world) == ["+13125550111", "+13125550190"]
    call = world.phone.calls[0]
    assert call.machine_detection == "DetectMessageEnd"
    assert call.async_amd
    assert call.url
    assert "/twilio/alert/voice?n=" in call.url
    assert call.status_callback
    assert "/twilio/alert/status?n=" in call.status_callback


def test_sequential_chain_moves_on_with_the_clock_and_stops_when_confirmed(world: World) -> None:
    tip_id = world.tip()
    world.run()
    world.clock.advance(150)
    world.run()
    assert called(world)[-1] == "+13125550112"  # the assistant principal, 2.5 minutes later
    with world.app.app_context(), world.services.db.session() as s:
        tip = s.get_one(Tip, tip_id)
        result = confirm(
            s,
            tip=tip,
            contact=s.get(Contact, world.contact("Daniel Kim").id),
            via="voice",
            now=world.clock.now(),
        )
        assert result.ended_leg
        assert result.cancelled_notifications == 4
    for _ in range(8):
        world.clock.advance(150)
        world.run()
    assert "+13125550113" not in called(world)  # nobody else on the POC leg is called
    legs = world.legs(tip_id)
    assert legs[LegKind.POC].state is LegState.CONFIRMED
    assert legs[LegKind.PSAP].state is LegState.OPEN  # a confirmation ends its own leg only
    assert "leg.confirmed" in world.events(tip_id)


def test_parallel_style_calls_every_school_contact_at_once(world: World) -> None:
    world.set_district(escalation_style=EscalationStyle.PARALLEL)
    world.tip()
    world.run()
    assert sorted(called(world)) == ["+13125550111", "+13125550112", "+13125550113", "+13125550190"]
    world.clock.advance(150)
    world.run()
    assert sorted(called(world)[4:]) == ["+13125550101", "+13125550102", "+13125550103"]


def test_out_of_session_notifies_law_enforcement(world: World) -> None:
    world.clock.set(SATURDAY_NIGHT)
    tip_id = world.tip()
    world.run()
    assert LegKind.LAW_ENFORCEMENT in world.legs(tip_id)
    assert "+13125550191" in called(world)


def test_crime_flag_notifies_law_enforcement_in_session(world: World) -> None:
    tip_id = world.tip(possible_crime=True)
    world.run()
    assert LegKind.LAW_ENFORCEMENT in world.legs(tip_id)
    assert "+13125550191" in called(world)


def test_a_schools_own_psap_wins_over_the_district_line(world: World) -> None:
    world.tip("1103")
    world.run()
    assert "+13125550192" in called(world)
    assert "+13125550190" not in called(world)


def test_no_reachable_school_contact_falls_back_to_the_district(world: World) -> None:
    with world.services.db.session() as s:
        for e164 in ("+13125550111", "+13125550112", "+13125550113"):
            s.scalars(
                select(PhoneNumber).where(PhoneNumber.e164 == e164)
            ).one().bad_for_calls = True
    tip_id = world.tip()
    world.run()
    assert called(world) == ["+13125550101", "+13125550190"]
    poc = world.rows(
        tip_id, channel=NotificationChannel.VOICE, leg_id=world.legs(tip_id)[LegKind.POC].id
    )
    assert [world.number_of(r.contact_id) for r in poc] == [
        "+13125550101",
        "+13125550102",
        "+13125550103",
    ]


def test_nobody_callable_raises_an_alert_not_silence(world: World) -> None:
    with world.services.db.session() as s:
        for phone in s.scalars(select(PhoneNumber)):
            phone.bad_for_calls = True
    world.tip()
    world.run()
    assert world.phone.calls == []
    # The POC and PSAP legs, and the duty line that would have stood in for them.
    assert world.alerts().count("leg_unreachable") == 3


def test_unknown_school_alerts_the_agents(world: World) -> None:
    tip_id = world.tip(None)
    world.run()
    assert "school_unknown" in world.alerts()
    assert "notifications.planned" in world.events(tip_id)


def test_standard_waits_for_review_then_goes_out_by_itself(world: World) -> None:
    tip_id = world.tip(level=TipLevel.STANDARD, tip_type="bullying")
    world.run()
    assert world.mail.messages == []
    assert world.phone.calls == []
    rows = world.rows(tip_id)
    hold = timedelta(minutes=15)
    assert {r.due_at for r in rows if r.channel is NotificationChannel.EMAIL} == {
        SCHOOL_HOURS + hold
    }
    with world.services.db.sessionmaker() as s:
        assert s.get_one(Tip, tip_id).notify_deadline_at == SCHOOL_HOURS + timedelta(hours=1)
    world.clock.advance(hold)
    world.run()
    assert len(world.mail.messages) == 3
    assert len(world.phone.messages) == 3
    assert world.phone.calls == []  # Standard: no calls


def test_standard_on_friday_evening_mails_now_and_texts_on_monday(world: World) -> None:
    world.clock.set(FRIDAY_EVENING)
    tip_id = world.tip(level=TipLevel.STANDARD, tip_type="vaping")
    world.run()
    rows = world.rows(tip_id)
    monday = datetime(2026, 3, 16, 7, 0, tzinfo=CHICAGO).astimezone(UTC)
    assert {r.due_at for r in rows if r.channel is NotificationChannel.SMS} == {monday}
    with world.services.db.sessionmaker() as s:
        assert s.get_one(Tip, tip_id).notify_deadline_at == monday + timedelta(hours=1)
    world.clock.advance(timedelta(minutes=15))
    world.run()
    assert len(world.mail.messages) == 3
    assert world.phone.messages == []


def test_other_is_email_only_and_police_only_when_flagged(world: World) -> None:
    tip_id = world.tip(level=TipLevel.OTHER, tip_type="complaint")
    world.run()
    assert {r.channel for r in world.rows(tip_id)} == {NotificationChannel.EMAIL}
    flagged = world.tip("1102", level=TipLevel.STANDARD, tip_type="drugs", possible_crime=True)
    world.run()
    emails = world.rows(flagged, channel=NotificationChannel.EMAIL)
    # The police desk has no e-mail in the sample; the plan still has every POC.
    assert len(emails) == 3


def test_level_change_replans_from_the_arrival_time(world: World) -> None:
    tip_id = world.tip(level=TipLevel.STANDARD, tip_type="harassment")
    world.run()
    world.clock.advance(timedelta(minutes=5))
    with world.services.db.session() as s:
        tip = s.get_one(Tip, tip_id)
        result = change_classification(
            s, tip, now=world.clock.now(), actor_type=ActorType.AGENT, actor_id=7, tip_type="weapon"
        )
        assert result is not None
        assert result.version == 2
        assert tip.level is TipLevel.CRITICAL
        assert tip.notify_deadline_at == SCHOOL_HOURS + timedelta(minutes=20)
    world.run()
    held = world.rows(tip_id, plan_version=1)
    assert held
    assert all(r.state is NotificationState.CANCELLED for r in held)
    # The chain runs from *arrival*: the tiers due by now (0, 2.5 and 5 minutes) all go at once
    # to catch up, the next one keeps its time.
    assert sorted(called(world)) == ["+13125550111", "+13125550112", "+13125550113", "+13125550190"]
    events = world.events(tip_id)
    assert events.index("tip.reclassified") < events.index("notifications.replanned")
    poc = world.rows(
        tip_id,
        plan_version=2,
        channel=NotificationChannel.VOICE,
        leg_id=world.legs(tip_id)[LegKind.POC].id,
    )
    assert poc[3].due_at == SCHOOL_HOURS + timedelta(seconds=450)


def test_downgrade_cancels_the_legs_and_does_not_repeat_sent_mail(world: World) -> None:
    tip_id = world.tip()
    world.run()
    sent_mail = len(world.mail.messages)
    with world.services.db.session() as s:
        change_classification(
            s,
            s.get_one(Tip, tip_id),
            now=world.clock.now(),
            actor_type=ActorType.AGENT,
            actor_id=7,
            tip_type="bullying",
        )
    world.clock.advance(timedelta(hours=2))
    world.run()
    assert {leg.state for leg in world.legs(tip_id).values()} == {LegState.CANCELLED}
    assert len(world.mail.messages) == sent_mail
    assert len(world.phone.calls) == 2


def test_new_information_notifies_those_already_told(world: World) -> None:
    tip_id = world.tip()
    world.run()
    with world.app.app_context(), world.services.db.session() as s:
        attach_recording(
            s,
            s.get_one(Tip, tip_id),
            recording_sid="RE" + "9" * 32,
            url="https://api.twilio.com/r",
            duration_seconds=30,
            call_id=None,
            now=world.clock.now(),
            followup=True,
        )
    world.run()
    updates = world.rows(tip_id, purpose=NotificationPurpose.UPDATE)
    assert {r.channel for r in updates} == {NotificationChannel.EMAIL, NotificationChannel.SMS}
    assert all(r.state is NotificationState.SENT for r in updates)
    assert any("[UPDATE]" in m.subject for m in world.mail.messages)


def test_planning_twice_changes_nothing(world: World) -> None:
    tip_id = world.tip()
    world.run()
    before = len(world.rows(tip_id))
    with world.services.db.session() as s:
        assert plan_tip(s, tip_id, world.clock.now()) is None
    world.run()
    assert len(world.rows(tip_id)) == before


# Sending outcomes ----------------------------------------------------------------------------


def test_unknown_outcome_is_not_resent_and_the_chain_covers_it(world: World) -> None:
    world.phone.fail_next(
        "place_call", TelephonyError(TelephonyErrorKind.UNKNOWN_OUTCOME, "read timeout")
    )
    tip_id = world.tip()
    world.run()
    first = world.rows(tip_id, channel=NotificationChannel.VOICE, position=0)
    principal = next(r for r in first if world.number_of(r.contact_id) == "+13125550111")
    assert principal.state is NotificationState.UNKNOWN
    for _ in range(3):
        world.run()
    assert "+13125550111" not in called(world)
    world.clock.advance(150)
    world.run()
    assert called(world)[-1] == "+13125550112"
    assert "notification_unknown" in world.alerts()


def test_retryable_error_is_retried_with_backoff_and_sent_once(world: World) -> None:
    world.phone.fail_next(
        "place_call",
        TelephonyError(TelephonyErrorKind.RETRYABLE, "too many requests", code=20429),
        times=2,
    )
    world.tip()
    world.run()
    assert "+13125550111" not in called(world)
    for _ in range(4):
        world.clock.advance(5)
        world.run()
    assert called(world).count("+13125550111") == 1


def test_permanent_number_is_marked_and_the_next_person_called_at_once(world: World) -> None:
    world.phone.fail_number(
        "+13125550111",
        TelephonyError(TelephonyErrorKind.PERMANENT_NUMBER, "invalid number", code=21217),
    )
    world.tip()
    world.run()
    world.run()
    assert called(world)[-1] == "+13125550112"  # not 2.5 minutes later: now
    with world.services.db.sessionmaker() as s:
        phone = s.scalars(select(PhoneNumber).where(PhoneNumber.e164 == "+13125550111")).one()
        assert phone.bad_for_calls
        assert phone.bad_reason == "twilio 21217"
    assert "notification_failed" in world.alerts()


def test_email_failures_alert_and_retry(world: World) -> None:
    world.mail.fail_next(EmailError(EmailErrorKind.RETRYABLE, "connection refused"))
    world.mail.fail_for(
        "d.kim@lakeview.example.org",
        EmailError(EmailErrorKind.PERMANENT, "550 no such user", smtp_code=550),
    )
    world.tip()
    world.run()
    world.clock.advance(10)
    world.run()
    to = sorted(m.to[0] for m in world.mail.messages)
    assert to == ["a.brooks@lakeview.example.org", "l.ortega@lakeview.example.org"]
    assert "email_failed" in world.alerts()


def test_two_workers_never_claim_the_same_row(world: World) -> None:
    tip_id = world.tip()
    with world.services.db.session() as s:
        plan_tip(s, tip_id, world.clock.now())
    row = world.rows(tip_id, channel=NotificationChannel.VOICE, position=0)[0]
    with world.services.db.session() as s:
        assert claim(s, row.id, "worker-a", world.clock.now())
    with world.services.db.session() as s:
        assert not claim(s, row.id, "worker-b", world.clock.now())
        assert not start_sending(s, row.id, "worker-b", world.clock.now())


def test_a_worker_lost_after_claiming_leaves_a_row_that_is_sent_once(world: World) -> None:
    tip_id = world.tip()
    with world.services.db.session() as s:
        plan_tip(s, tip_id, world.clock.now())
    row = world.rows(tip_id, channel=NotificationChannel.VOICE, position=0)[0]
    with world.services.db.session() as s:
        claim(s, row.id, "worker-that-died", world.clock.now())
    world.run()  # the lease is still held: not sent
    assert world.number_of(row.contact_id) not in called(world)
    world.clock.advance(LEASE + timedelta(seconds=1))
    world.run()
    world.run()
    assert called(world).count(world.number_of(row.contact_id)) == 1


def test_a_worker_lost_while_sending_leaves_an_unknown_row_never_resent(world: World) -> None:
    tip_id = world.tip()
    with world.services.db.session() as s:
        plan_tip(s, tip_id, world.clock.now())
    row = world.rows(tip_id, channel=NotificationChannel.VOICE, position=0)[0]
    with world.services.db.session() as s:
        claim(s, row.id, "worker-that-died", world.clock.now())
        start_sending(s, row.id, "worker-that-died", world.clock.now())
    world.clock.advance(LEASE + timedelta(seconds=1))
    world.run()
    world.run()
    assert world.number_of(row.contact_id) not in called(world)
    assert world.rows(tip_id, id=row.id)[0].state is NotificationState.UNKNOWN
    assert "notification_unknown" in world.alerts()


def test_queue_down_the_sweep_sends_by_itself(world: World) -> None:
    from hotline.background.jobs import RecordingJobQueue

    queue = RecordingJobQueue()
    queue.fail = True
    world.services.jobs = queue
    world.tip()
    with world.app.app_context():
        report = tasks.sweep(world.services)
    assert report.sent_inline
    assert "+13125550111" in called(world)


# The watchdog --------------------------------------------------------------------------------


def test_watchdog_alerts_after_ten_minutes_unconfirmed_once(world: World) -> None:
    tip_id = world.tip()
    world.run()
    world.clock.advance(UNCONFIRMED_ALERT_AFTER - timedelta(seconds=1))
    world.run()
    assert "leg_unconfirmed" not in world.alerts()
    world.clock.advance(1)
    world.run()
    alerted = world.alerts().count("leg_unconfirmed")
    world.run()
    world.clock.advance(30)
    world.run()
    # One per open leg (POC, PSAP, and the police leg the PSAP's second round opened), never
    # repeated however often the watchdog runs.
    assert alerted == len(world.legs(tip_id)) >= 2
    assert world.alerts().count("leg_unconfirmed") == alerted


def test_a_leg_that_runs_out_starts_over_and_keeps_district_and_police_informed(
    world: World,
) -> None:
    tip_id = world.tip()
    for _ in range(12):  # 6 tiers, 2.5 minutes apart, then the grace period
        world.run()
        world.clock.advance(150)
    world.run()
    legs = world.legs(tip_id)
    assert legs[LegKind.POC].round >= 2
    assert "leg_exhausted" in world.alerts()
    assert LegKind.LAW_ENFORCEMENT in legs  # opened so the police are called too
    assert "+13125550191" in called(world)
    escalations = world.rows(
        tip_id, purpose=NotificationPurpose.ESCALATION, channel=NotificationChannel.EMAIL
    )
    assert {r.email for r in escalations} >= {"m.okafor@lakeview.example.org"}
    # The principal is called again in round 2.
    assert called(world).count("+13125550111") >= 2
    assert "leg.round_restarted" in world.events(tip_id)


def test_it_never_goes_silent_even_when_every_status_callback_is_lost(world: World) -> None:
    """The fake sends no status callbacks: each call counts as ended once its ring timeout and
    time limit are over, and the legs still go around."""
    tip_id = world.tip()
    for _ in range(60):
        world.run()
        world.clock.advance(60)
    legs = world.legs(tip_id)
    assert legs[LegKind.POC].round >= 3
    assert legs[LegKind.PSAP].round >= 3
    assert all(leg.state is LegState.OPEN for leg in legs.values())


def test_past_due_notification_raises_an_alert(world: World) -> None:
    tip_id = world.tip()
    with world.services.db.session() as s:
        plan_tip(s, tip_id, world.clock.now())
    world.clock.advance(timedelta(minutes=21))  # nothing ran: every row is late
    with world.app.app_context():
        tasks.watchdog(world.services)
    assert "notification_past_due" in world.alerts()


def test_watchdog_heartbeat_reaches_healthz(world: World) -> None:
    world.run()
    body = world.app.test_client().get("/healthz").get_json()
    assert body["watchdog"]["age_seconds"] == 0.0


def test_grace_constant_is_shorter_than_a_round() -> None:
    assert ROUND_GRACE < timedelta(minutes=20)
