"""After an outage: what the provider holds and the database does not becomes tips, once; inbound
calls whose final status never arrived are asked about and ended like their callback would."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from hotline.background import reconcile
from hotline.models import (
    Alert,
    Call,
    Channel,
    InboundMessageSid,
    Recording,
    Reporter,
    Tip,
    TipMessage,
    TipStatus,
)
from hotline.telephony.ports import (
    ProviderCall,
    ProviderMessage,
    ProviderRecording,
    TelephonyError,
    TelephonyErrorKind,
)
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.dispatch_world import World
from tests.support.faults import database_fails
from tests.support.ivr_driver import Call as DriverCall
from tests.support.ivr_driver import VoiceDriver
from tests.support.texting import reply_of, sms
from tests.support.twilio_driver import TwilioDriver
from tests.support.twilio_fake import TwilioFake

STUDENT = "+17735550142"


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def recording_url(recording_sid: str) -> str:
    return f"https://api.twilio.com/2010-04-01/Accounts/AC{'0' * 32}/Recordings/{recording_sid}"


def count(world: World, model: type) -> int:
    with world.services.db.sessionmaker() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def tips(world: World) -> list[Tip]:
    with world.services.db.sessionmaker() as s:
        return list(s.scalars(select(Tip).order_by(Tip.id)))


def kinds(world: World, tip_id: int) -> list[str]:
    return world.events(tip_id)


def run(world: World, **kwargs: object) -> reconcile.ReconcileReport:
    with world.app.app_context():
        report = reconcile.reconcile_with_provider(world.services, **kwargs)  # type: ignore[arg-type]
        world.drain()
        return report


def at_the_recording(world: World) -> DriverCall:
    """A new report's call waiting at the recording; Twilio's status callbacks are lost."""
    driver = VoiceDriver(
        world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN, status_path=None
    )
    call = driver.call(from_=STUDENT)
    for keys in ("1", "1", "1", "1101#", "1"):
        call.press(keys)
    return call


def recovered_alerts(world: World) -> int:
    return world.alerts().count("outage_recovered")


def a_while_ago(world: World, minutes: int = 10) -> datetime:
    return world.clock.now() - timedelta(minutes=minutes)


# Texts --------------------------------------------------------------------------------------------


def test_a_text_lost_to_an_outage_becomes_an_sms_tip_once(world: World) -> None:
    twilio = TwilioDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    params = sms(STUDENT, "a boy has a gun in his backpack, room 114")
    with database_fails(world.app):
        assert "911" in (reply_of(twilio.post("/twilio/sms", params)) or "")
    assert tips(world) == []
    world.phone.inbound_messages.append(
        ProviderMessage(params["MessageSid"], STUDENT, params["Body"], a_while_ago(world))
    )
    report = run(world)
    assert report.messages == [params["MessageSid"]]
    [tip] = tips(world)
    assert tip.channel is Channel.SMS
    assert tip.reporter_id is not None
    assert "tip.reconciled" in kinds(world, tip.id)
    with world.services.db.sessionmaker() as s:
        assert s.scalars(select(TipMessage.body)).all() == [params["Body"]]
    assert recovered_alerts(world) == 1
    # Nothing is texted to the reporter hours later.
    assert not any(m.to == STUDENT for m in world.phone.messages)
    # Again: nothing new, no second alert.
    assert run(world).total == 0
    assert len(tips(world)) == 1
    assert recovered_alerts(world) == 1


def test_texts_the_webhook_handled_are_known(world: World) -> None:
    twilio = TwilioDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    handled = sms(STUDENT, "someone is selling vapes by the gym")
    stop = sms("+17735550143", "STOP")
    for params in (handled, stop):
        reply_of(twilio.post("/twilio/sms", params))
    for params in (handled, stop):
        world.phone.inbound_messages.append(
            ProviderMessage(
                params["MessageSid"], params["From"], params["Body"], a_while_ago(world)
            )
        )
    assert run(world).total == 0
    assert len(tips(world)) == 1
    assert recovered_alerts(world) == 0


def test_a_late_webhook_after_the_reconciliation_makes_no_second_tip(world: World) -> None:
    params = sms(STUDENT, "the threat is for tomorrow morning")
    world.phone.inbound_messages.append(
        ProviderMessage(params["MessageSid"], STUDENT, params["Body"], a_while_ago(world))
    )
    run(world)
    twilio = TwilioDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    assert reply_of(twilio.post("/twilio/sms", params)) is None
    assert len(tips(world)) == 1


def test_a_webhook_committing_the_same_text_meanwhile_wins_without_a_second_tip(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook commits between the reconciliation's check and its insert: the unique sid
    makes the reconciliation's transaction fail, and it leaves the text to the webhook's tip."""
    params = sms(STUDENT, "he said he would bring it on friday")
    world.phone.inbound_messages.append(
        ProviderMessage(params["MessageSid"], STUDENT, params["Body"], a_while_ago(world))
    )
    twilio = TwilioDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    reply_of(twilio.post("/twilio/sms", params))
    monkeypatch.setattr(reconcile, "message_known", lambda _session, _sid: False)
    assert run(world).total == 0
    assert len(tips(world)) == 1
    assert recovered_alerts(world) == 0


def test_a_text_whose_webhook_may_still_be_on_its_way_is_left_alone(world: World) -> None:
    world.phone.inbound_messages.append(
        ProviderMessage(sid("SM"), STUDENT, "just now", world.clock.now() - timedelta(seconds=30))
    )
    assert run(world).total == 0
    assert tips(world) == []


def test_a_keyword_found_at_the_provider_is_recorded_not_made_a_tip(world: World) -> None:
    world.phone.inbound_messages.append(
        ProviderMessage(sid("SM"), STUDENT, "STOP", a_while_ago(world))
    )
    assert run(world).total == 0
    assert tips(world) == []
    assert count(world, InboundMessageSid) == 1
    with world.services.db.sessionmaker() as s:
        assert s.scalars(select(Reporter.sms_opted_out)).all() == [True]


def test_a_failed_listing_is_tried_again_next_round(world: World) -> None:
    world.phone.inbound_messages.append(
        ProviderMessage(sid("SM"), STUDENT, "please help", a_while_ago(world))
    )
    error = TelephonyError(TelephonyErrorKind.RETRYABLE, "list: could not connect")
    world.phone.fail_next("list_inbound_messages", error)
    assert run(world).total == 0
    assert run(world).messages
    assert len(tips(world)) == 1


def test_the_window_looks_back_over_the_lookback(world: World) -> None:
    run(world)
    since = {listing.method: listing.since for listing in world.phone.listings}
    assert set(since) == {"list_inbound_messages", "list_inbound_calls", "list_recordings"}
    assert all(world.clock.now() - at == reconcile.LOOKBACK for at in since.values())


def test_the_sweep_lists_what_reached_the_hotline_number(world: World) -> None:
    run(world)
    asked = {listing.method: listing.to for listing in world.phone.listings}
    hotline_number = world.services.settings.hotline_number
    assert asked["list_inbound_messages"] == hotline_number
    assert asked["list_inbound_calls"] == hotline_number


# Calls and recordings -----------------------------------------------------------------------------


def test_a_call_during_an_outage_leaves_its_recording_on_a_new_voice_tip(world: World) -> None:
    """The whole call while the database was down: the apology, a recording, nothing stored.
    The recording at the provider becomes a voice tip with the recording attached."""
    driver = VoiceDriver(
        world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN, status_path=None
    )
    with database_fails(world.app):
        call = driver.call(from_=STUDENT)
        handle = call.record(duration=25, recording_callback=False)
    assert tips(world) == []
    assert count(world, Call) == 0
    started = a_while_ago(world)
    world.phone.inbound_calls.append(ProviderCall(call.sid, STUDENT, "completed", started, 40))
    world.phone.recordings.append(
        ProviderRecording(handle.sid, call.sid, handle.url, "completed", started, 25)
    )
    report = run(world)
    assert (report.recordings, report.calls) == ([handle.sid], [])
    [tip] = tips(world)
    assert tip.channel is Channel.VOICE
    assert tip.status is TipStatus.OPEN
    assert tip.reporter_id is not None
    assert {"recording.added", "tip.opened", "tip.reconciled"} <= set(kinds(world, tip.id))
    with world.services.db.sessionmaker() as s:
        recording = s.scalars(select(Recording)).one()
        assert (recording.sid, recording.tip_id) == (handle.sid, tip.id)
        assert s.scalars(select(Call.tip_id).where(Call.sid == call.sid)).one() == tip.id
    assert recovered_alerts(world) == 1
    assert run(world).total == 0
    assert len(tips(world)) == 1


def test_a_recording_whose_action_was_lost_goes_on_the_calls_tip(world: World) -> None:
    """The menu made the tip, then the database failed for the <Record> action; the recording's
    status callback (after the outage) stored the row without a tip."""
    call = at_the_recording(world)
    with database_fails(world.app):
        handle = call.record(duration=20, recording_callback=False)
    handle.deliver("completed")
    [tip] = tips(world)
    world.phone.recordings.append(
        ProviderRecording(handle.sid, call.sid, handle.url, "completed", a_while_ago(world), 20)
    )
    world.phone.inbound_calls.append(
        ProviderCall(call.sid, STUDENT, "completed", a_while_ago(world, 12), 90)
    )
    assert run(world).recordings == [handle.sid]
    [again] = tips(world)
    assert again.id == tip.id
    assert again.status is TipStatus.OPEN
    assert kinds(world, tip.id).count("recording.added") == 1
    with world.services.db.sessionmaker() as s:
        assert s.scalars(select(Recording.tip_id)).all() == [tip.id]


def test_a_finished_call_nobody_saw_is_an_incomplete_voice_tip(world: World) -> None:
    call_sid = sid("CA")
    world.phone.inbound_calls.append(
        ProviderCall(call_sid, "anonymous", "completed", a_while_ago(world), 12)
    )
    # Calls that never connected are not tips.
    world.phone.inbound_calls.append(
        ProviderCall(sid("CA"), STUDENT, "no-answer", a_while_ago(world), 0)
    )
    assert run(world).calls == [call_sid]
    [tip] = tips(world)
    assert tip.status is TipStatus.INCOMPLETE
    assert tip.reporter_id is None
    assert "tip.reconciled" in kinds(world, tip.id)
    assert run(world).total == 0


def test_calls_and_recordings_the_database_knows_change_nothing(world: World) -> None:
    driver = VoiceDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    call = driver.call(from_=STUDENT)
    for keys in ("1", "1", "1", "1101#", "1"):
        call.press(keys)
    handle = call.record(duration=20)
    call.hang_up()
    world.phone.inbound_calls.append(
        ProviderCall(call.sid, STUDENT, "completed", a_while_ago(world), 60)
    )
    world.phone.recordings.append(
        ProviderRecording(handle.sid, call.sid, handle.url, "completed", a_while_ago(world), 20)
    )
    # Someone else's recording (an outbound call of another app on the account): ignored.
    other = sid("RE")
    world.phone.recordings.append(
        ProviderRecording(other, sid("CA"), recording_url(other), "completed", a_while_ago(world))
    )
    with world.app.app_context():
        world.drain()
    before = [(t.id, t.status, len(kinds(world, t.id))) for t in tips(world)]
    assert run(world).total == 0
    assert [(t.id, t.status, len(kinds(world, t.id))) for t in tips(world)] == before


# Through the real Twilio adapter, against the fake Twilio server ---------------------------------


def test_the_adapter_lists_every_page_of_the_window(
    live: tuple[World, TwilioFake],
) -> None:
    world, fake = live
    hotline_number = world.services.settings.hotline_number
    now = world.clock.now()
    old = fake.add_inbound_message(STUDENT, hotline_number, "too old", now - timedelta(hours=7))
    texts = [
        fake.add_inbound_message(
            STUDENT, hotline_number, f"text {i}", now - timedelta(minutes=10 + i)
        )
        for i in range(130)
    ]
    fake.add_inbound_message(STUDENT, "+13125550111", "another number", now - timedelta(minutes=5))
    call_sid = fake.add_inbound_call(STUDENT, hotline_number, now - timedelta(minutes=20))
    recording_sid, _ = fake.add_recording(call_sid=call_sid, created_at=now - timedelta(minutes=19))
    adapter = world.services.telephony
    since = now - reconcile.LOOKBACK
    listed = adapter.list_inbound_messages(hotline_number, since)
    assert sorted(m.sid for m in listed) == sorted(texts)
    assert old not in {m.sid for m in listed}
    assert all(m.from_ == STUDENT and m.sent_at is not None for m in listed)
    assert len(fake.requests_to("ListMessage")) == 2  # 100 per page
    [call] = adapter.list_inbound_calls(hotline_number, since)
    assert (call.sid, call.status, call.duration_seconds) == (call_sid, "completed", 30)
    [recording] = adapter.list_recordings(since)
    assert (recording.sid, recording.call_sid) == (recording_sid, call_sid)
    assert recording.url.endswith(f"/Recordings/{recording_sid}")
    query = dict(fake.requests_to("ListMessage")[0].query)
    assert query["To"] == hotline_number
    assert "DateSent>" in query


def test_reconciling_against_the_fake_twilio_makes_the_tips(
    live: tuple[World, TwilioFake],
) -> None:
    world, fake = live
    hotline_number = world.services.settings.hotline_number
    now = world.clock.now()
    text_sid = fake.add_inbound_message(
        STUDENT, hotline_number, "gun in locker 22", now - timedelta(minutes=9)
    )
    call_sid = fake.add_inbound_call(STUDENT, hotline_number, now - timedelta(minutes=30))
    recording_sid, _ = fake.add_recording(call_sid=call_sid, created_at=now - timedelta(minutes=29))
    silent = fake.add_inbound_call("anonymous", hotline_number, now - timedelta(minutes=25))
    report = run(world)
    assert (report.messages, report.recordings, report.calls) == (
        [text_sid],
        [recording_sid],
        [silent],
    )
    by_channel = sorted((t.channel.value, t.status.value) for t in tips(world))
    assert by_channel == [("sms", "open"), ("voice", "incomplete"), ("voice", "open")]
    assert run(world).total == 0
    assert len(tips(world)) == 3


# Inbound calls whose final status never arrived ---------------------------------------------------


def test_a_hang_up_whose_callback_was_lost_still_marks_the_tip_incomplete(world: World) -> None:
    call = at_the_recording(world)
    call.hang_up()  # at the recording prompt; no status callback reaches the app
    [tip] = tips(world)
    assert tip.status is TipStatus.INTAKE
    world.phone.call_statuses[call.sid] = "completed"
    with world.app.app_context():
        assert reconcile.check_stale_inbound_calls(world.services) == []  # too early
        world.clock.advance(reconcile.STALE_INBOUND_CALL_AFTER + timedelta(seconds=1))
        assert reconcile.check_stale_inbound_calls(world.services) == [call.sid]
        assert reconcile.check_stale_inbound_calls(world.services) == []
    [tip] = tips(world)
    assert tip.status is TipStatus.INCOMPLETE
    with world.services.db.sessionmaker() as s:
        row = s.scalars(select(Call).where(Call.sid == call.sid)).one()
        assert row.status == "completed"
        assert row.ended_at is not None


def test_a_long_call_still_in_progress_is_left_alone(world: World) -> None:
    call = at_the_recording(world)
    world.phone.call_statuses[call.sid] = "in-progress"
    world.clock.advance(timedelta(minutes=40))
    with world.app.app_context():
        assert reconcile.check_stale_inbound_calls(world.services) == []
        world.phone.fail_next(
            "fetch_call_status", TelephonyError(TelephonyErrorKind.RETRYABLE, "down")
        )
        assert reconcile.check_stale_inbound_calls(world.services) == []
    [tip] = tips(world)
    assert tip.status is TipStatus.INTAKE


def test_beat_and_the_embedded_worker_run_both_jobs(world: World) -> None:
    from hotline.background.embedded import EmbeddedWorker

    schedule = world.app.extensions["celery"].conf.beat_schedule
    tasks = {entry["task"]: entry["schedule"] for entry in schedule.values()}
    assert tasks["hotline.reconcile_with_provider"] == reconcile.RECONCILE_EVERY_SECONDS
    assert tasks["hotline.check_stale_inbound_calls"] == reconcile.RECONCILE_EVERY_SECONDS
    world.phone.inbound_messages.append(
        ProviderMessage(sid("SM"), STUDENT, "found by the embedded worker", a_while_ago(world))
    )
    worker = EmbeddedWorker(world.app)
    with world.app.app_context():
        worker.run_once(monotonic_now=1000.0)
        assert len(tips(world)) == 1
        worker.run_once(monotonic_now=1001.0)  # not again until RECONCILE_EVERY_SECONDS
    assert [m.method for m in world.phone.listings].count("list_inbound_messages") == 1


def test_alert_says_how_many_were_recovered(world: World) -> None:
    for body in ("one", "two"):
        world.phone.inbound_messages.append(
            ProviderMessage(sid("SM"), STUDENT, body, a_while_ago(world))
        )
    run(world)
    with world.services.db.sessionmaker() as s:
        [alert] = s.scalars(select(Alert).where(Alert.kind == "outage_recovered")).all()
        assert alert.message.startswith("2 messages/calls recovered after an outage")
        assert STUDENT not in alert.message


def test_the_reporters_number_is_never_stored_in_clear(world: World) -> None:
    world.phone.inbound_messages.append(
        ProviderMessage(sid("SM"), STUDENT, "hello", a_while_ago(world))
    )
    world.phone.inbound_calls.append(
        ProviderCall(sid("CA"), STUDENT, "completed", a_while_ago(world), 10)
    )
    run(world)
    from tests.support.texting import database_text

    dump = database_text(world.app)
    assert STUDENT not in dump
    assert STUDENT[2:] not in dump
