"""A caller's state in the voice menu and an alert call's state are two types, each stamped as
it is stored on the call's row: reading one as the other fails loudly instead of quietly
starting the menu over (or quietly forgetting that the callee pressed 1)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from dispatcher.alert_call_state import AlertCallState
from hotline.core.call_state import KIND_KEY, CallStateKind, CallStateMismatch, stamped
from hotline.models import Call
from hotline.services import hotline
from ivr_flows.flow import Category, SchoolRef, Step, VoiceState
from ivr_flows.render import apology
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.dispatch_world import World
from tests.ivr_driver import VoiceDriver
from tests.test_alert_call import alert_driver, first_call
from tests.twilio_driver import TwilioDriver

CALLER = VoiceState(
    step=Step.SCHOOL_CONFIRM,
    n=7,
    language="es",
    category=Category.THREAT,
    school_candidate=SchoolRef(3, "Lakeview High School"),
)
ALERT = AlertCallState(notification_ids=(12, 13), confirmed=True)


def test_each_state_reads_back_what_it_stored() -> None:
    assert VoiceState.from_json(CALLER.to_json()) == CALLER
    assert AlertCallState.from_json(ALERT.to_json()) == ALERT
    assert CALLER.to_json()[KIND_KEY] == CallStateKind.VOICE_MENU
    assert ALERT.to_json()[KIND_KEY] == CallStateKind.ALERT_CALL


def test_a_call_row_with_nothing_yet_is_an_empty_state_of_either_kind() -> None:
    """The first status callback of a call makes its row before any state is kept."""
    assert VoiceState.from_json({}) == VoiceState()
    assert AlertCallState.from_json({}) == AlertCallState()


def test_an_alert_calls_state_read_by_the_voice_menu_fails_loudly() -> None:
    with pytest.raises(CallStateMismatch, match="alert_call call's state read as voice_menu"):
        VoiceState.from_json(ALERT.to_json())


def test_a_callers_state_read_as_an_alert_calls_fails_loudly() -> None:
    with pytest.raises(CallStateMismatch, match="voice_menu call's state read as alert_call"):
        AlertCallState.from_json(CALLER.to_json())


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (
            {"step": "record", "language": "es", "tries": 1},
            VoiceState(Step.RECORD, language="es", tries=1),
        ),
        ({"notifications": [4, 5], "confirmed": True}, AlertCallState((4, 5), confirmed=True)),
        ({"notifications": [4]}, AlertCallState((4,))),
    ],
)
def test_states_stored_before_the_stamp_are_still_read_by_their_own_kind(
    stored: dict[str, Any], expected: VoiceState | AlertCallState
) -> None:
    """A call under way across the upgrade keeps going (each kind always had its own key)."""
    assert type(expected).from_json(stored) == expected


@pytest.mark.parametrize(
    ("reader", "stored"),
    [
        (VoiceState, {"notifications": [4, 5], "confirmed": True}),
        (VoiceState, {"confirmed": True}),
        (AlertCallState, {"step": "record", "language": "es"}),
        (AlertCallState, {"confirmed": True}),
    ],
)
def test_an_unstamped_state_of_the_other_kind_fails_loudly(
    reader: type[VoiceState] | type[AlertCallState], stored: dict[str, Any]
) -> None:
    with pytest.raises(CallStateMismatch, match="without a stamp"):
        reader.from_json(stored)


@pytest.mark.parametrize(
    "stored",
    [
        {KIND_KEY: "alert_call", "notifications": "12"},
        {KIND_KEY: "alert_call", "notifications": [True]},
        {KIND_KEY: "alert_call", "notifications": [12], "confirmed": "yes"},
    ],
)
def test_a_malformed_alert_calls_state_fails_loudly(stored: dict[str, Any]) -> None:
    with pytest.raises(CallStateMismatch, match="not an alert call's state"):
        AlertCallState.from_json(stored)


def test_the_stamps_key_is_never_a_field() -> None:
    with pytest.raises(ValueError, match="stamp"):
        stamped(CallStateKind.ALERT_CALL, {KIND_KEY: "voice_menu"})


def stored_state(world: World, sid: str) -> dict[str, Any]:
    with hotline(world.app).db.sessionmaker() as s:
        return s.scalars(select(Call).where(Call.sid == sid)).one().flow_state


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
