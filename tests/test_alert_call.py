"""The alert call a contact receives, played by the Twilio-faithful driver."""

from __future__ import annotations

from sqlalchemy import select

from hotline.models import Call, LegKind, LegState, Notification, NotificationChannel, Tip
from hotline.services import hotline
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.dispatch_world import World
from tests.ivr_driver import VoiceDriver


def alert_driver(world: World, notification_id: int) -> VoiceDriver:
    return VoiceDriver(
        world.app.test_client(),
        TEST_PUBLIC_BASE_URL,
        TEST_AUTH_TOKEN,
        voice_path=f"/twilio/alert/voice?n={notification_id}",
        status_path=f"/twilio/alert/status?n={notification_id}",
    )


def first_call(world: World, tip_id: int) -> Notification:
    return world.rows(tip_id, channel=NotificationChannel.VOICE, position=0)[0]


def test_pressing_1_confirms_the_leg(world: World) -> None:
    tip_id = world.tip()
    world.run()
    row = first_call(world, tip_id)
    with hotline(world.app).db.sessionmaker() as s:
        report = s.get_one(Tip, tip_id).report_number
    call = alert_driver(world, row.id).call(from_="+13125550100", to="+13125550111")
    heard = call.heard_text_since_last_action()
    assert "critical safety report for Lakeview High School" in heard
    assert ", ".join(report) in heard and "Press 1 to confirm" in heard
    call.press("1")
    assert "is recorded" in call.last_heard_text() and call.ended
    legs = world.legs(tip_id)
    assert legs[LegKind.POC].state is LegState.CONFIRMED
    assert legs[LegKind.POC].confirmed_via == "voice"
    with hotline(world.app).db.sessionmaker() as s:
        outbound = s.scalars(select(Call).where(Call.sid == call.sid)).one()
        assert outbound.status == "completed" and outbound.tip_id == tip_id
    assert "notification.call_ended" in world.events(tip_id)


def test_star_repeats_and_silence_ends_without_confirming(world: World) -> None:
    tip_id = world.tip()
    world.run()
    call = alert_driver(world, first_call(world, tip_id).id).call()
    call.press("*")
    assert "Press 1 to confirm" in call.heard_text_since_last_action()
    call.silence()
    call.silence()
    assert call.ended and "confirm later" in call.last_heard_text()
    assert world.legs(tip_id)[LegKind.POC].state is LegState.OPEN


def test_a_colleagues_later_confirmation_is_recorded_and_ends_nothing_new(world: World) -> None:
    tip_id = world.tip()
    world.run()
    rows = world.rows(
        tip_id, channel=NotificationChannel.VOICE, leg_id=world.legs(tip_id)[LegKind.POC].id
    )
    alert_driver(world, rows[0].id).call().press("1")
    # The assistant principal, called in the same round, presses 1 too.
    colleague = alert_driver(world, rows[1].id).call()
    colleague.press("1")
    assert "already confirmed by someone else" in colleague.last_heard_text()
    assert world.events(tip_id).count("leg.confirmed") == 1
    assert "receipt.confirmed" in world.events(tip_id)
