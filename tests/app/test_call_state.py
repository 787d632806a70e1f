"""A caller's state in the voice menu and an alert call's state are two types, each stamped as
it is stored on the call's row: reading one as the other fails loudly instead of quietly
starting the menu over (or quietly forgetting that the callee pressed 1)."""

from __future__ import annotations

import pytest

from dispatcher.alert_call_state import AlertCallState
from hotline.core.call_state import CallStateMismatch
from ivr_flows.flow import Step, VoiceState
from ivr_flows.render import apology
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.alert_calls import alert_driver, first_call
from tests.support.call_states import stored_state
from tests.support.dispatch_world import World
from tests.support.ivr_driver import VoiceDriver
from tests.support.twilio_driver import TwilioDriver


def test_the_rows_the_webhooks_keep_are_each_of_their_own_kind(world: World) -> None:
    """An alert call's webhooks keep an alert call's state; a caller's, a caller's."""
    tip_id = world.tip()
    world.run()
    row = first_call(world, tip_id)
    alert_call = alert_driver(world, row.id, callbacks=False).call()
    alert_call.press("1")
    kept = stored_state(world, alert_call.sid)
    assert AlertCallState.from_json(kept) == AlertCallState((row.id,), confirmed=True)
    with pytest.raises(CallStateMismatch):
        VoiceState.from_json(kept)

    caller = VoiceDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN).call()
    caller.press("1")
    kept = stored_state(world, caller.sid)
    assert VoiceState.from_json(kept).step is Step.MAIN_MENU
    with pytest.raises(CallStateMismatch):
        AlertCallState.from_json(kept)


def test_the_voice_menu_given_an_alert_calls_sid_apologises_and_changes_nothing(
    world: World,
) -> None:
    """A menu webhook carrying an alert call's sid (a misrouted request) is not a new caller
    starting over: the turn fails, the apology is said, the alert call's state stays."""
    tip_id = world.tip()
    world.run()
    row = first_call(world, tip_id)
    alert_call = alert_driver(world, row.id, callbacks=False).call()
    alert_call.press("1")
    before = stored_state(world, alert_call.sid)
    twilio = TwilioDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    answer = twilio.post(
        "/twilio/voice",
        {
            "CallSid": alert_call.sid,
            "AccountSid": "AC" + "0" * 32,
            "From": alert_call.from_,
            "To": alert_call.to,
            "CallStatus": "in-progress",
            "Direction": "inbound",
        },
    )
    assert answer.status_code == 200
    assert answer.get_data(as_text=True) == apology(TEST_PUBLIC_BASE_URL, "en")
    assert stored_state(world, alert_call.sid) == before
