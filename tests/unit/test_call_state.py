"""A caller's state in the voice menu and an alert call's state are two types, each stamped as
it is stored on the call's row: reading one as the other fails loudly instead of quietly
starting the menu over (or quietly forgetting that the callee pressed 1)."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.alert_call_state import AlertCallState
from hotline.core.call_state import KIND_KEY, CallStateKind, CallStateMismatch, stamped
from ivr_flows.flow import Step, VoiceState
from tests.support.call_states import ALERT, CALLER


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
