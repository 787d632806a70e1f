"""The alert call a contact receives, played by the Twilio-faithful driver."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from hotline.models import (
    Call,
    EscalationStyle,
    LegKind,
    LegState,
    Notification,
    NotificationChannel,
    NotificationState,
    Tip,
)
from hotline.services import hotline
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.alert_calls import alert_driver, first_call
from tests.support.dispatch_world import World
from tests.support.faults import database_fails
from tests.support.ivr_driver import VoiceDriver


def test_pressing_1_confirms_the_leg(world: World) -> None:
    tip_id = world.tip()
    world.run()
    row = first_call(world, tip_id)
    with hotline(world.app).db.sessionmaker() as s:
        report = s.get_one(Tip, tip_id).report_number
    call = alert_driver(world, row.id).call(from_="+13125550100", to="+13125550111")
    heard = call.heard_text_since_last_action()
    assert "critical safety report for Lakeview High School" in heard
    assert ", ".join(report) in heard
    assert "Press 1 to confirm" in heard
    call.press("1")
    assert "is recorded" in call.last_heard_text()
    assert call.ended
    legs = world.legs(tip_id)
    assert legs[LegKind.POC].state is LegState.CONFIRMED
    assert legs[LegKind.POC].confirmed_via == "voice"
    with hotline(world.app).db.sessionmaker() as s:
        outbound = s.scalars(select(Call).where(Call.sid == call.sid)).one()
        assert outbound.status == "completed"
        assert outbound.tip_id == tip_id
    assert "notification.call_ended" in world.events(tip_id)


def test_star_repeats_and_silence_ends_without_confirming(world: World) -> None:
    tip_id = world.tip()
    world.run()
    call = alert_driver(world, first_call(world, tip_id).id).call()
    call.press("*")
    assert "Press 1 to confirm" in call.heard_text_since_last_action()
    call.silence()
    call.silence()
    heard = call.last_heard_text()
    assert call.ended
    assert "To confirm later, call this number" in heard
    assert "key in the report number" in heard
    assert world.legs(tip_id)[LegKind.POC].state is LegState.OPEN


def test_a_colleague_answering_after_the_confirmation_is_told_and_let_go(world: World) -> None:
    tip_id = world.tip()
    world.run()
    rows = world.rows(
        tip_id, channel=NotificationChannel.VOICE, leg_id=world.legs(tip_id)[LegKind.POC].id
    )
    alert_driver(world, rows[0].id).call().press("1")
    # The assistant principal's phone was still ringing; answering, they hear it is done.
    colleague = alert_driver(world, rows[1].id).call()
    assert colleague.ended
    assert "already confirmed by a colleague" in colleague.last_heard_text()
    assert world.events(tip_id).count("leg.confirmed") == 1


def in_progress(world: World, row: Notification) -> str:
    """Answer the row's call as a person: returns the call sid, the call still live."""
    call = alert_driver(world, row.id).call()
    with hotline(world.app).db.session() as s:
        s.get_one(Notification, row.id).provider_sid = call.sid
    call.send_status("in-progress")
    return call.sid


def test_parallel_colleagues_on_a_live_call_are_told_when_one_confirms(world: World) -> None:
    world.set_district(escalation_style=EscalationStyle.PARALLEL)
    tip_id = world.tip()
    world.run()
    rows = world.rows(
        tip_id, channel=NotificationChannel.VOICE, leg_id=world.legs(tip_id)[LegKind.POC].id
    )
    listening = in_progress(world, rows[1])
    alert_driver(world, rows[0].id).call().press("1")
    world.run()
    told = [(sid, u.twiml) for sid, u in world.phone.updates if sid == listening]
    assert told
    assert "confirmed by a colleague" in (told[0][1] or "")
    assert "notification.colleague_told" in world.events(tip_id)


def test_a_machine_gets_the_voicemail_and_the_leg_goes_on(world: World) -> None:
    tip_id = world.tip()
    world.run()
    row = first_call(world, tip_id)
    call = alert_driver(world, row.id).call()
    driver = alert_driver(world, row.id)
    params = {
        "CallSid": call.sid,
        "AccountSid": call.account_sid,
        "AnsweredBy": "machine_end_beep",
        "MachineDetectionDuration": "4200",
    }
    r = world.app.test_client().post(
        f"/twilio/alert/amd?n={row.id}",
        data=params,
        headers={
            "X-Twilio-Signature": driver.sign(driver.url(f"/twilio/alert/amd?n={row.id}"), params)
        },
    )
    assert r.status_code == 200
    world.run()
    [(sid, update)] = world.phone.updates
    assert sid == call.sid
    assert update.twiml
    assert "not a confirmation" in update.twiml
    assert "text 1 and the report number" in update.twiml
    assert "press 3, and key in the report number" in update.twiml
    assert world.legs(tip_id)[LegKind.POC].state is LegState.OPEN
    assert "notification.voicemail_left" in world.events(tip_id)
    # The call ends after the voicemail: the next person is called at once.
    call.hang_up()
    world.run()
    assert called_numbers(world)[-1] == "+13125550112"


def test_a_late_machine_verdict_never_overrides_a_keypress(world: World) -> None:
    tip_id = world.tip()
    world.run()
    row = first_call(world, tip_id)
    call = alert_driver(world, row.id).call()
    call.press("1")
    driver = alert_driver(world, row.id)
    params = {"CallSid": call.sid, "AnsweredBy": "machine_end_other"}
    world.app.test_client().post(
        f"/twilio/alert/amd?n={row.id}",
        data=params,
        headers={
            "X-Twilio-Signature": driver.sign(driver.url(f"/twilio/alert/amd?n={row.id}"), params)
        },
    )
    world.run()
    assert world.phone.updates == []
    assert world.legs(tip_id)[LegKind.POC].state is LegState.CONFIRMED
    assert "notification.late_machine_verdict_ignored" in world.events(tip_id)


def called_numbers(world: World) -> list[str]:
    return [c.to for c in world.phone.calls]


@pytest.mark.parametrize("status", ["no-answer", "busy", "failed"])
def test_no_answer_is_retried_once_then_the_leg_moves_on(world: World, status: str) -> None:
    tip_id = world.tip()
    world.run()
    for attempt in range(2):
        row = next(
            r
            for r in world.rows(tip_id, channel=NotificationChannel.VOICE)
            if r.state is NotificationState.SENT
            and r.outcome == "accepted"
            and world.number_of(r.contact_id) == "+13125550111"
        )
        driver = alert_driver(world, row.id)
        params = {"CallSid": "CA" + f"{attempt}" * 32, "CallStatus": status, "SequenceNumber": "3"}
        path = f"/twilio/alert/status?n={row.id}"
        world.app.test_client().post(
            path, data=params, headers={"X-Twilio-Signature": driver.sign(driver.url(path), params)}
        )
        world.clock.advance(61)
        world.run()
    numbers = called_numbers(world)
    assert numbers.count("+13125550111") == 2  # called again once
    assert "+13125550112" in numbers  # then the leg moved on
    events = world.events(tip_id)
    assert "notification.retry_planned" in events
    assert "leg.moved_on" in events


# A contact calling the hotline back: tests/test_confirm_by_callback.py


def test_a_reporter_calling_hears_nothing_about_alerts(world: World) -> None:
    world.tip()
    world.run()
    driver = VoiceDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    heard = driver.call(from_="+14155550123").heard_text_since_last_action()
    assert "confirmation" not in heard
    assert "Thank you for calling" in heard


def test_a_call_whose_final_status_never_came_is_checked_at_twilio(world: World) -> None:
    from dispatcher.tasks import STALE_CALL_AFTER

    tip_id = world.tip()
    world.run()
    sid = world.phone.call_sids[0]
    world.phone.call_statuses[sid] = "no-answer"
    world.clock.advance(STALE_CALL_AFTER + timedelta(seconds=1))
    world.run()
    row = next(
        r for r in world.rows(tip_id, channel=NotificationChannel.VOICE) if r.provider_sid == sid
    )
    assert row.outcome == "no-answer"
    assert "notification.status_checked" in world.events(tip_id)


@pytest.mark.parametrize(
    ("channel", "code", "flag"),
    [
        ("place_call", 21211, "bad_for_calls"),
        ("place_call", 21214, "bad_for_calls"),
        ("place_call", 21217, "bad_for_calls"),
        ("send_sms", 21610, "sms_opted_out"),
        ("send_sms", 21612, "bad_for_sms"),
        ("send_sms", 21614, "bad_for_sms"),
    ],
)
def test_each_permanent_error_marks_the_number_and_tells_the_agents(
    world: World, channel: str, code: int, flag: str
) -> None:
    from hotline.models import Alert, PhoneNumber
    from hotline.telephony.ports import TelephonyError, TelephonyErrorKind

    world.phone.fail_next(
        channel, TelephonyError(TelephonyErrorKind.PERMANENT_NUMBER, f"twilio {code}", code=code)
    )
    tip_id = world.tip()
    world.run()
    with hotline(world.app).db.sessionmaker() as s:
        bad = s.scalars(select(PhoneNumber).where(getattr(PhoneNumber, flag).is_(True))).all()
        assert len(bad) == 1
        assert bad[0].bad_reason == f"twilio {code}"
        alerts = s.scalars(select(Alert).where(Alert.tip_id == tip_id)).all()
        assert any(a.kind == "notification_failed" and str(code) in a.message for a in alerts)
    # Skipped from then on: the next round never calls or texts that number that way again.
    before = len(world.phone.calls) + len(world.phone.messages)
    for _ in range(14):
        world.clock.advance(150)
        world.run()
    if channel == "place_call":
        assert bad[0].e164 not in [c.to for c in world.phone.calls[before:]]


def test_duplicate_and_shuffled_status_callbacks_apply_once(world: World) -> None:
    tip_id = world.tip()
    world.run()
    row = first_call(world, tip_id)
    driver = alert_driver(world, row.id)
    sid = world.phone.call_sids[0]
    path = f"/twilio/alert/status?n={row.id}"

    def send(seq: int, status: str) -> None:
        params = {
            "CallSid": sid,
            "CallStatus": status,
            "SequenceNumber": str(seq),
            "CallDuration": "0",
        }
        r = world.app.test_client().post(
            path,
            data=params,
            headers={
                "X-Twilio-Signature": driver.sign(driver.url(path), params),
                "I-Twilio-Idempotency-Token": f"tok-{seq}-{status}",
            },
        )
        assert r.status_code == 200

    for seq, status in [
        (0, "initiated"),
        (3, "no-answer"),
        (1, "ringing"),
        (3, "no-answer"),
        (2, "ringing"),
    ]:
        send(seq, status)
    with hotline(world.app).db.sessionmaker() as s:
        call = s.scalars(select(Call).where(Call.sid == sid)).one()
        assert (call.status, call.last_sequence_number) == ("no-answer", 3)
    assert world.events(tip_id).count("notification.retry_planned") == 1


def test_nobody_answers_the_whole_chain_and_it_goes_around_again(world: World) -> None:
    tip_id = world.tip()
    answered: set[str] = set()
    for _ in range(30):
        world.run()
        for row in world.rows(
            tip_id, channel=NotificationChannel.VOICE, state=NotificationState.SENT
        ):
            if row.provider_sid in answered or row.outcome != "accepted":
                continue
            answered.add(row.provider_sid or "")
            driver = alert_driver(world, row.id)
            params = {
                "CallSid": row.provider_sid or "",
                "CallStatus": "no-answer",
                "SequenceNumber": "1",
            }
            path = f"/twilio/alert/status?n={row.id}"
            world.app.test_client().post(
                path,
                data=params,
                headers={"X-Twilio-Signature": driver.sign(driver.url(path), params)},
            )
        world.clock.advance(60)
    legs = world.legs(tip_id)
    assert legs[LegKind.POC].round >= 2
    assert legs[LegKind.POC].state is LegState.OPEN
    numbers = [c.to for c in world.phone.calls]
    # Everyone on the chain was tried (each twice in a round), then the principal again.
    for number in (
        "+13125550111",
        "+13125550112",
        "+13125550113",
        "+13125550101",
        "+13125550102",
        "+13125550103",
    ):
        assert number in numbers
    assert numbers.count("+13125550111") >= 3


def test_the_alert_says_how_and_when_it_came_in_and_the_words_only_if_opted_in(
    world: World,
) -> None:
    from hotline.models import ActorType, Channel, MessageDirection, TipMessage

    tip_id = world.tip(channel=Channel.SMS)
    with hotline(world.app).db.session() as s:
        s.add(
            TipMessage(
                tip_id=tip_id,
                direction=MessageDirection.FROM_REPORTER,
                body="he said he will bring a gun to the game tomorrow",
                actor_type=ActorType.REPORTER,
                created_at=world.clock.now(),
            )
        )
    world.run()
    row = first_call(world, tip_id)
    heard = alert_driver(world, row.id).call().heard_text_since_last_action()
    assert "It came in by a text message at 10:00 AM CDT." in heard
    assert "gun" not in heard
    world.set_district(email_summary=True)
    heard = alert_driver(world, row.id).call().heard_text_since_last_action()
    assert "The reporter wrote: he said he will bring a gun" in heard


def test_a_failure_building_the_alert_still_answers_what_to_do(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dispatcher import alert_routes

    tip_id = world.tip()
    world.run()

    def broken(*args: object) -> str:
        raise RuntimeError("database went away")

    monkeypatch.setattr(alert_routes, "alert_text", broken)
    call = alert_driver(world, first_call(world, tip_id).id).call()
    heard = call.last_heard_text()
    assert call.ended
    assert "calling or texting this number back with its report number" in heard
    assert world.legs(tip_id)[LegKind.POC].state is LegState.OPEN


def test_a_status_callback_racing_the_first_request_still_gets_the_alert(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call's status callback inserts the call's row just after the alert webhook looked
    for it: the guard applies the webhook again, and the callee hears the alert."""
    from dispatcher import alert_routes
    from hotline.models import CallDirection

    tip_id = world.tip()
    world.run()
    row = first_call(world, tip_id)
    real_call = alert_routes._call
    raced: list[str] = []

    def racing(session, req, rows):  # type: ignore[no-untyped-def]
        def insert_first(_session, *args):  # type: ignore[no-untyped-def]
            if raced:
                return
            raced.append(req.get("CallSid"))
            with hotline(world.app).db.session() as other:
                other.add(
                    Call(
                        sid=req.get("CallSid"),
                        direction=CallDirection.OUTBOUND,
                        status="ringing",
                        created_at=world.clock.now(),
                        flow_state={},
                    )
                )

        if not raced:
            # After this request looked for the call's row, before it inserts its own.
            event.listen(session, "before_flush", insert_first)
        return real_call(session, req, rows)

    monkeypatch.setattr(alert_routes, "_call", racing)
    call = alert_driver(world, row.id).call()
    heard = call.heard_text_since_last_action()
    assert raced
    assert "Press 1 to confirm" in heard
    assert "call or text this number back" not in heard


def test_an_alert_call_during_a_database_outage_still_says_what_to_do(world: World) -> None:
    """The database goes down after the call was placed: the callee hears how to confirm
    later, and a keypress that cannot be stored says so (the leg goes on)."""

    tip_id = world.tip()
    world.run()
    row = first_call(world, tip_id)
    # Status callbacks answer 503 in an outage (tests/test_database_outage.py): none here.
    with database_fails(world.app):
        call = alert_driver(world, row.id, callbacks=False).call()
        assert call.last_request.status_code == 200
        assert call.ended
        assert "calling or texting this number back" in call.last_heard_text()
    call = alert_driver(world, row.id, callbacks=False).call()
    with database_fails(world.app):
        call.press("1")
        assert call.last_request.status_code == 200
        assert "could not be recorded" in call.last_heard_text()
    assert world.legs(tip_id)[LegKind.POC].state is LegState.OPEN


def test_a_keypress_whose_confirmation_cannot_be_written_says_so(world: World) -> None:
    """The database times out on the very update that ends the leg: the callee hears that the
    confirmation was not recorded, not a generic message, and nothing is half-stored."""

    tip_id = world.tip()
    world.run()
    call = alert_driver(world, first_call(world, tip_id).id, callbacks=False).call()
    with database_fails(world.app, when=lambda statement: "notification_legs SET" in statement):
        call.press("1")
    assert call.last_request.status_code == 200
    assert "could not be recorded" in call.last_heard_text()
    assert world.legs(tip_id)[LegKind.POC].state is LegState.OPEN
