"""The voice menu as pure functions, without Flask or a database."""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import pytest

from hotline.core.confirming import VOICE_MENU_KEY
from hotline.wording import LANGUAGE_MENU, PromptKey, all_catalogues, catalogue
from ivr_flows import flow
from ivr_flows.flow import (
    Ask,
    Category,
    HangUp,
    Keys,
    NoInput,
    NotRecorded,
    Recorded,
    RecordMessage,
    SchoolRef,
    Speech,
    Start,
    Step,
    VoiceState,
    advance,
    script,
)

BRAVO = SchoolRef(7, "Bravo Middle School")


@dataclass
class FakeContext:
    schools: dict[str, SchoolRef] = field(default_factory=lambda: {"1101": BRAVO})
    spoken: dict[str, SchoolRef] = field(default_factory=lambda: {"bravo middle": BRAVO})
    tips: dict[tuple[str, str], int] = field(default_factory=lambda: {("1234567", "4321"): 42})
    messages: list[flow.Message] = field(default_factory=list)
    #: Report numbers the caller's number may confirm.
    confirmable: set[str] = field(default_factory=set)
    #: Whether the flow asked about any report (it must not, unless one was keyed in).
    asked: list[str] = field(default_factory=list)

    def may_confirm(self, report_number: str) -> bool:
        self.asked.append(report_number)
        return report_number in self.confirmable

    def school_by_code(self, code: str) -> SchoolRef | None:
        return self.schools.get(code)

    def match_school(self, speech: str, _language: str) -> SchoolRef | None:
        return self.spoken.get(speech.lower())

    def school_name(self, _school_id: int) -> str:
        return BRAVO.name

    def followup_tip(self, report_number: str, pin: str) -> int | None:
        return self.tips.get((report_number, pin))

    def messages_for_reporter(self, _tip_id: int) -> list[flow.Message]:
        return self.messages

    def dont_know(self, speech: str, _language: str) -> bool:
        return speech.lower() in ("i don't know", "no sé")

    def spoken_code(self, speech: str) -> str | None:
        return speech.replace(" ", "") if speech.replace(" ", "").isdigit() else None


CTX = FakeContext()


def run(*events: flow.Event, state: VoiceState | None = None) -> tuple[VoiceState, list]:  # type: ignore[type-arg]
    state = state or VoiceState()
    effects: list = []  # type: ignore[type-arg]
    for event in (Start(), *events) if state.n == 0 else events:
        turn = advance(state, event, CTX)
        state, effects = turn.state, [*effects, *turn.effects]
    return state, effects


REC = Recorded("RE" + "a" * 32, "https://api.twilio.com/rec", 12)


def test_every_language_has_every_prompt_and_a_voice() -> None:
    cats = all_catalogues()
    assert {c.code for c in cats} == set(LANGUAGE_MENU.values()) >= {"en", "es"}
    for cat in cats:
        prompts = cat.texts["ivr"]
        assert set(prompts) == {k.value for k in PromptKey}, cat.code
        assert cat.say_language
        assert cat.voice
        assert cat.speech_language
        for key, text in prompts.items():
            assert text.strip(), (cat.code, key)
            names = {n for _, n, _, _ in string.Formatter().parse(text) if n}
            english = {
                n for _, n, _, _ in string.Formatter().parse(catalogue("en").texts["ivr"][key]) if n
            }
            assert names == english == PromptKey(key).fields, (cat.code, key)


def test_a_whole_report_by_keypad() -> None:
    state, effects = run(Keys("1"), Keys("1"), Keys("1"), Keys("1101#"), Keys("1"))
    assert state.step is Step.RECORD
    assert state.school_id == BRAVO.id
    assert effects == [flow.CreateTip(Category.THREAT, BRAVO.id, "en")]
    state, effects = run(REC, state=state)
    assert state.step is Step.READBACK
    assert state.recorded
    assert effects == [flow.AttachRecording(REC.recording_sid, REC.recording_url, 12)]


def test_spanish_is_chosen_and_the_emergency_advice_repeated_in_it() -> None:
    turn = advance(advance(VoiceState(), Start(), CTX).state, Keys("2"), CTX)
    assert turn.state.language == "es"
    assert turn.state.step is Step.MAIN_MENU
    assert turn.preface == (flow.Say(PromptKey.EMERGENCY),)


@pytest.mark.parametrize(("key", "category"), list(flow.CATEGORY_MENU.items()))
def test_each_category(key: str, category: Category) -> None:
    state, _ = run(Keys("1"), Keys("1"), Keys(key))
    assert state.category is category
    assert state.step is Step.SCHOOL


def test_school_by_speech_with_confirmation_and_unknown() -> None:
    state, _ = run(Keys("1"), Keys("1"), Keys("3"), Speech("Bravo Middle", 0.7))
    assert state.step is Step.SCHOOL_CONFIRM
    assert state.school_candidate == BRAVO
    state, effects = run(Keys("1"), state=state)
    assert effects == [flow.CreateTip(Category.BULLYING, BRAVO.id, "en")]
    state, effects = run(Keys("1"), Keys("1"), Keys("3"), Speech("I don't know"))
    assert state.school_unknown
    assert effects == [flow.CreateTip(Category.BULLYING, None, "en")]


def test_two_failed_school_tries_go_on_without_the_school() -> None:
    state, effects = run(Keys("1"), Keys("1"), Keys("1"), Keys("9999#"), Speech("pizza"))
    assert state.step is Step.RECORD
    assert state.school_unknown
    assert effects == [flow.CreateTip(Category.THREAT, None, "en")]


def test_rejected_candidate_is_noted_when_the_school_stays_unknown() -> None:
    state, effects = run(
        Keys("1"), Keys("1"), Keys("1"), Keys("1101"), NoInput(), NoInput(), NoInput()
    )
    assert state.step is Step.RECORD
    assert state.school_unknown
    assert effects == [flow.SchoolNoted(BRAVO.id), flow.CreateTip(Category.THREAT, None, "en")]


@pytest.mark.parametrize("bad", [NoInput(), Keys("7"), Speech("hello")])
def test_silence_or_nonsense_never_loops_forever(bad: flow.Event) -> None:
    """Whatever the caller does (or does not do), the call reaches a recording, then ends."""
    state = advance(VoiceState(), Start(), CTX).state
    seen = set()
    for _ in range(60):
        seen.add(state.step)
        if state.step is Step.ENDED:
            break
        scr, _ = script(state, CTX, pin="4321")
        event: flow.Event = NotRecorded() if isinstance(scr, RecordMessage) else bad
        state = advance(state, event, CTX).state
    assert state.step is Step.ENDED
    assert Step.RECORD in seen


def test_report_number_and_pin_readback_and_replay() -> None:
    state = VoiceState(step=Step.READBACK, report_number="1234567", tip_id=1)
    scr, _ = script(state, CTX, pin="4321")
    assert isinstance(scr, Ask)
    readback = scr.prompts[0]
    assert readback.key is PromptKey.READBACK
    assert readback.params == {"report_number": flow.Digits("1234567"), "pin": flow.Digits("4321")}
    again = advance(state, Keys("1"), CTX).state
    assert again.step is Step.READBACK
    assert again.readbacks == 1
    done = advance(state, NoInput(), CTX)
    assert done.state.step is Step.ENDED
    assert done.preface == (flow.Say(PromptKey.GOODBYE),)
    assert isinstance(script(done.state, CTX)[0], HangUp)


def test_followup_right_pin_hears_messages_and_records_more() -> None:
    ctx = FakeContext(messages=[flow.Message(5, "Is he in 8th grade?")])
    state = VoiceState(step=Step.FOLLOWUP_REPORT, n=4)
    state = advance(state, Keys("1234567#"), ctx).state
    turn = advance(state, Keys("4321#"), ctx)
    assert turn.effects == (flow.FollowupSucceeded(42),)
    scr, heard = script(turn.state, ctx)
    assert heard == (flow.MessagesHeard(42, (5,)),)
    assert isinstance(scr, Ask)
    assert scr.prompts[1].params["text"] == "Is he in 8th grade?"
    state = advance(flow.mark_messages_read(turn.state), Keys("1"), ctx).state
    assert state.step is Step.FOLLOWUP_RECORD
    turn = advance(state, REC, ctx)
    assert turn.effects == (
        flow.AttachRecording(REC.recording_sid, REC.recording_url, 12, followup=True),
    )


def test_wrong_pin_and_unknown_report_sound_the_same() -> None:
    wrong = advance(
        VoiceState(step=Step.FOLLOWUP_PIN, followup_report="1234567"), Keys("1111"), CTX
    )
    unknown = advance(
        VoiceState(step=Step.FOLLOWUP_PIN, followup_report="7654321"), Keys("4321"), CTX
    )
    assert wrong.preface == unknown.preface == (flow.Say(PromptKey.FOLLOWUP_NO_MATCH),)
    assert wrong.state.step is unknown.state.step is Step.FOLLOWUP_REPORT
    assert wrong.effects == (flow.FollowupFailed("1234567"),)


def test_three_failed_followups_offer_a_message_that_becomes_a_tip() -> None:
    state = VoiceState(step=Step.FOLLOWUP_REPORT, n=3)
    for _ in range(flow.MAX_FOLLOWUP_ATTEMPTS):
        state = advance(state, Keys("1234567"), CTX).state
        state = advance(state, Keys("0000"), CTX).state
    assert state.step is Step.LEAVE_MESSAGE
    turn = advance(state, REC, CTX)
    assert turn.effects == (
        flow.CreateTipForMessage("en"),
        flow.AttachRecording(REC.recording_sid, REC.recording_url, 12),
    )
    assert turn.state.step is Step.READBACK


def test_hang_up_during_recording_ends_the_call_with_the_recording() -> None:
    state = VoiceState(step=Step.RECORD, tip_id=1, category=Category.THREAT)
    assert state.gathering_a_report
    turn = advance(state, Recorded(REC.recording_sid, REC.recording_url, 3, hung_up=True), CTX)
    assert turn.state.step is Step.ENDED
    assert not turn.state.gathering_a_report


def test_state_round_trips_through_json() -> None:
    state, _ = run(Keys("2"), Keys("1"), Keys("2"), Keys("1101"))
    assert VoiceState.from_json(state.to_json()) == state
    assert VoiceState.from_json({}) == VoiceState()


def said_keys(state: VoiceState, ctx: FakeContext) -> list[PromptKey]:
    scr, _ = script(state, ctx)
    return [say.key for say in scr.prompts]


def test_every_caller_hears_the_same_start_whatever_their_number() -> None:
    """Caller ID is not identity: the flow asks nothing about alerts when a call comes in."""
    ctx = FakeContext(confirmable={"1234567"})
    turn = advance(VoiceState(), Start(caller_verification="TN-Validation-Passed-A"), ctx)
    assert turn.state.step is Step.LANGUAGE
    assert turn.effects == ()
    assert ctx.asked == []
    assert turn.state.caller_verification == "TN-Validation-Passed-A"
    assert said_keys(turn.state, ctx)[:2] == [PromptKey.GREETING, PromptKey.EMERGENCY]


def test_a_contact_confirms_by_keying_in_the_report_number() -> None:
    ctx = FakeContext(confirmable={"1234567"})
    state = VoiceState(step=Step.MAIN_MENU, n=2)
    state = advance(state, Keys(VOICE_MENU_KEY), ctx).state
    assert state.step is Step.CONFIRM_REPORT
    assert said_keys(state, ctx) == [PromptKey.CONFIRM_ASK]
    assert ctx.asked == []

    done = advance(state, Keys("1234567"), ctx)

    assert done.effects == (flow.ConfirmReport("1234567"),)
    assert done.preface == (
        flow.Say(PromptKey.CONFIRM_RECORDED, {"report_number": flow.Digits("1234567")}),
    )
    assert done.state.step is Step.CONFIRM_MORE
    again = advance(done.state, Keys("1"), ctx).state
    assert again.step is Step.CONFIRM_REPORT
    assert again.confirm_attempts == 0
    assert advance(done.state, Keys("2"), ctx).state.step is Step.MAIN_MENU
    # Silence after a confirmation: asked again, then a goodbye (nothing is left to record).
    state = done.state
    for _ in range(flow.MAX_TRIES - 1):
        state = advance(state, NoInput(), ctx).state
        assert state.step is Step.CONFIRM_MORE
    end = advance(state, NoInput(), ctx)
    assert end.state.step is Step.ENDED
    assert end.preface == (flow.Say(PromptKey.CONFIRM_GOODBYE),)


def test_a_report_the_number_may_not_confirm_is_refused_then_the_menu_again() -> None:
    ctx = FakeContext(confirmable={"1234567"})
    state = VoiceState(step=Step.CONFIRM_REPORT, n=3)
    for attempt in range(1, flow.MAX_CONFIRM_ATTEMPTS):
        turn = advance(state, Keys("7654321"), ctx)
        assert turn.effects == ()
        assert turn.preface == (flow.Say(PromptKey.CONFIRM_NO_MATCH),)
        state = turn.state
        assert state.step is Step.CONFIRM_REPORT
        assert state.confirm_attempts == attempt
    last = advance(state, Keys("7654321"), ctx)
    assert last.effects == ()
    assert [say.key for say in last.preface] == [
        PromptKey.CONFIRM_NO_MATCH,
        PromptKey.CONFIRM_OTHER_WAYS,
    ]
    assert last.state.step is Step.MAIN_MENU
    assert last.state.confirm_attempts == 0


def test_silence_when_asked_for_the_report_number_goes_back_to_the_menu() -> None:
    state = VoiceState(step=Step.CONFIRM_REPORT, n=3)
    for _ in range(flow.MAX_TRIES - 1):
        state = advance(state, NoInput(), CTX).state
        assert state.step is Step.CONFIRM_REPORT
    assert advance(state, Keys("*"), CTX).state.step is Step.MAIN_MENU


def test_a_call_saved_by_an_older_version_starts_over() -> None:
    old = {**VoiceState(step=Step.MAIN_MENU).to_json(), "step": "contact_confirm"}
    old["pending"] = [[42, 7]]
    assert VoiceState.from_json(old).step is Step.LANGUAGE
