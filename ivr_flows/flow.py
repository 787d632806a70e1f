"""The voice menu as pure functions: ``advance(state, event, ctx) -> Turn`` and
``script(state, ctx) -> (Script, effects)``.

No Flask, no database, no TwiML here. The state is a small JSON-able record kept on the call; the
context answers the few questions the menu must ask (is there a school with this code?) and the
*effects* say what should change in the world (create the tip, attach a recording). The blueprint
applies the effects, then renders ``preface + script(state)`` as TwiML.

Rules every path obeys, so a frightened caller is never stuck or lost:
- every prompt that waits for input is re-asked at most ``MAX_TRIES`` times, then the call moves on
  with a sensible default (English, a new report, "something else", school unknown);
- every path reaches a chance to record before the call ends (but for a contact who confirmed
  an alert);
- caller ID is not identity: nothing about a tip is read to a caller because of the number they
  call from. A contact confirming an alert keys in its report number (menu option
  ``VOICE_MENU_KEY``), and only that number is read back;
- the tip exists as soon as category and school are settled, before the recording, so the
  dispatcher can start and a hang-up loses nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from hotline.core.call_state import CallStateKind, fields_of, stamped
from hotline.core.confirming import VOICE_MENU_KEY
from hotline.wording import DEFAULT_LANGUAGE, LANGUAGE_MENU, PromptKey

#: How many times one question is asked before the call moves on without an answer.
MAX_TRIES = 3
#: How many times the school question is asked (each failed search counts).
MAX_SCHOOL_TRIES = 2
#: Report-number/PIN pairs a caller may try in one call.
MAX_FOLLOWUP_ATTEMPTS = 3
#: How often the report number and PIN may be replayed.
MAX_READBACKS = 5
#: Report numbers a contact may try to confirm in one pass of the menu.
MAX_CONFIRM_ATTEMPTS = 3
#: Longest recording, in seconds.
MAX_RECORDING_SECONDS = 300


class Step(enum.StrEnum):
    LANGUAGE = "language"
    MAIN_MENU = "main_menu"
    CATEGORY = "category"
    SCHOOL = "school"
    SCHOOL_CONFIRM = "school_confirm"
    RECORD = "record"
    READBACK = "readback"
    FOLLOWUP_REPORT = "followup_report"
    FOLLOWUP_PIN = "followup_pin"
    FOLLOWUP_MENU = "followup_menu"
    FOLLOWUP_RECORD = "followup_record"
    LEAVE_MESSAGE = "leave_message"
    #: A contact confirming an alert keys in its report number.
    CONFIRM_REPORT = "confirm_report"
    #: Confirmed: another report, the menu, or goodbye.
    CONFIRM_MORE = "confirm_more"
    ENDED = "ended"


class Category(enum.StrEnum):
    THREAT = "threat"
    SELF_HARM = "self_harm"
    BULLYING = "bullying"
    DRUGS = "drugs"
    OTHER = "other"


#: The keypad category menu, in the order the prompt reads it.
CATEGORY_MENU: dict[str, Category] = {
    "1": Category.THREAT,
    "2": Category.SELF_HARM,
    "3": Category.BULLYING,
    "4": Category.DRUGS,
    "5": Category.OTHER,
}


# Events ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """The call was answered."""

    #: What the network said of the caller ID (Twilio's ``StirVerstat``), kept for the agents;
    #: it never decides anything here.
    caller_verification: str | None = None


@dataclass(frozen=True)
class Keys:
    digits: str


@dataclass(frozen=True)
class Speech:
    text: str
    confidence: float | None = None


@dataclass(frozen=True)
class NoInput:
    """The caller said and pressed nothing before the prompt timed out."""


@dataclass(frozen=True)
class Recorded:
    recording_sid: str
    recording_url: str
    duration_seconds: int | None
    #: The caller hung up to end the recording: nothing more will be heard.
    hung_up: bool = False


@dataclass(frozen=True)
class NotRecorded:
    """<Record> timed out with nothing recorded."""


Event = Start | Keys | Speech | NoInput | Recorded | NotRecorded


# Effects --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateTip:
    category: Category
    school_id: int | None
    language: str


@dataclass(frozen=True)
class AttachRecording:
    """Add the recording to the call's tip (``state.tip_id``). A message left outside the
    new-report path gets its tip first, from :class:`CreateTipForMessage`."""

    recording_sid: str
    recording_url: str
    duration_seconds: int | None
    followup: bool = False


@dataclass(frozen=True)
class CreateTipForMessage:
    """A message recorded where no tip exists yet (a failed follow-up): it becomes a new tip."""

    language: str


@dataclass(frozen=True)
class FollowupFailed:
    report_number: str


@dataclass(frozen=True)
class FollowupSucceeded:
    tip_id: int


@dataclass(frozen=True)
class MessagesHeard:
    tip_id: int
    message_ids: tuple[int, ...]


@dataclass(frozen=True)
class ConfirmReport:
    """A contact calling back confirms the report they keyed in (the context said the caller's
    number may confirm it)."""

    report_number: str


@dataclass(frozen=True)
class SchoolNoted:
    """A school the caller named but did not confirm: kept on the timeline for the agent."""

    school_id: int


Effect = (
    CreateTip
    | AttachRecording
    | CreateTipForMessage
    | FollowupFailed
    | FollowupSucceeded
    | MessagesHeard
    | SchoolNoted
    | ConfirmReport
)


# What the caller hears ------------------------------------------------------------------------


@dataclass(frozen=True)
class Digits:
    """A number read digit by digit ("4, 8, 1, 5")."""

    value: str


@dataclass(frozen=True)
class Say:
    key: PromptKey
    params: dict[str, str | Digits] = field(default_factory=dict)
    #: Say it in this language rather than the call's (the language menu).
    language: str | None = None


@dataclass(frozen=True)
class Ask:
    """Speak, then wait for keys (and speech, when ``speech``)."""

    prompts: tuple[Say, ...]
    num_digits: int | None = None
    finish_on_key: str = "#"
    speech: bool = False
    timeout: int = 6


@dataclass(frozen=True)
class RecordMessage:
    prompts: tuple[Say, ...]
    max_length: int = MAX_RECORDING_SECONDS


@dataclass(frozen=True)
class HangUp:
    prompts: tuple[Say, ...]


Script = Ask | RecordMessage | HangUp


# State and context ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SchoolRef:
    id: int
    name: str


@dataclass(frozen=True)
class Message:
    id: int
    text: str


class FlowContext(Protocol):
    """The questions the menu asks of the directory and the tips. Queries only: every change is
    an effect."""

    def school_by_code(self, code: str) -> SchoolRef | None: ...

    def match_school(self, speech: str, language: str) -> SchoolRef | None:
        """The one school the words name, or None (no match, or two equally likely)."""
        ...

    def school_name(self, school_id: int) -> str: ...

    def followup_tip(self, report_number: str, pin: str) -> int | None:
        """The tip when number and PIN match and it is not locked; None otherwise (the caller
        must not learn which)."""
        ...

    def messages_for_reporter(self, tip_id: int) -> list[Message]: ...

    def dont_know(self, speech: str, language: str) -> bool: ...

    def spoken_code(self, speech: str) -> str | None: ...

    def may_confirm(self, report_number: str) -> bool:
        """Whether the caller's number may confirm this report (it was sent to that number).
        False alike for an unknown report and one not sent there."""
        ...


@dataclass(frozen=True)
class VoiceState:
    step: Step = Step.LANGUAGE
    #: Bumped on every turn and carried in action URLs, so a retried delivery of an old step is
    #: told apart from a new, identical keypress.
    n: int = 0
    language: str = DEFAULT_LANGUAGE
    language_chosen: bool = False
    #: The greeting (with the 911 and 988 advice) was said.
    greeted: bool = False
    #: Failed answers to the current question.
    tries: int = 0
    #: The caller's choice on the category menu (OTHER after failed tries); None until then. A tip
    #: made without one (a hang-up before it, a message left outside the new-report path) has no
    #: category and is Standard, for an agent to review.
    category: Category | None = None
    school_id: int | None = None
    school_unknown: bool = False
    school_candidate: SchoolRef | None = None
    school_tries: int = 0
    #: The tip this call made or followed up.
    tip_id: int | None = None
    report_number: str | None = None
    readbacks: int = 0
    record_tries: int = 0
    followup_report: str | None = None
    followup_attempts: int = 0
    #: Heard once at the start of the follow-up menu, then again on request.
    messages_read: bool = False
    #: The recording that made the tip complete; a hang-up after it is not an incomplete tip.
    recorded: bool = False
    confirm_attempts: int = 0
    #: Twilio's ``StirVerstat`` for the caller ID, as the call came in (for the timeline).
    caller_verification: str | None = None
    #: The PIN, encrypted, kept only for the readback and wiped when the call ends. The flow
    #: never reads it; the runtime opens it for ``script(pin=...)``.
    pin_sealed: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["step"] = self.step.value
        data["category"] = None if self.category is None else self.category.value
        return stamped(CallStateKind.VOICE_MENU, data)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VoiceState:
        """Read a caller's stored state; an alert call's raises
        :class:`~hotline.core.call_state.CallStateMismatch`."""
        values = fields_of(CallStateKind.VOICE_MENU, data, unstamped_marker="step")
        if not values:
            return cls()
        step = values.get("step", Step.LANGUAGE.value)
        # A step this version no longer has (a call in progress across an upgrade): start over.
        values["step"] = Step(step) if step in Step._value2member_map_ else Step.LANGUAGE
        if values.get("category") is not None:
            values["category"] = Category(values["category"])
        candidate = values.get("school_candidate")
        if candidate is not None:
            values["school_candidate"] = SchoolRef(**candidate)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})

    @property
    def gathering_a_report(self) -> bool:
        """Between "new report" and the recording: a hang-up here leaves an incomplete tip."""
        return self.step in (Step.CATEGORY, Step.SCHOOL, Step.SCHOOL_CONFIRM, Step.RECORD) and (
            not self.recorded
        )


@dataclass(frozen=True)
class Turn:
    state: VoiceState
    effects: tuple[Effect, ...] = ()
    #: Said before the next step's own prompt ("Sorry, I didn't understand that.").
    preface: tuple[Say, ...] = ()


# The menu -------------------------------------------------------------------------------------


def advance(state: VoiceState, event: Event, ctx: FlowContext) -> Turn:
    """Apply one event to the call. Unknown combinations re-ask the current question."""
    state = replace(state, n=state.n + 1)
    if isinstance(event, Start):
        # Everyone hears the same menu, whatever number they call from.
        return Turn(
            replace(
                state,
                step=Step.LANGUAGE,
                tries=0,
                caller_verification=event.caller_verification,
            )
        )
    handler = _HANDLERS.get(state.step)
    if handler is None:  # ENDED: nothing more to do
        return Turn(state)
    return handler(state, event, ctx)


def _retry(state: VoiceState, event: Event, on_give_up: Turn) -> Turn:
    """Re-ask the same question, or give up after MAX_TRIES with ``on_give_up``."""
    tries = state.tries + 1
    if tries >= MAX_TRIES:
        return on_give_up
    key = PromptKey.NO_INPUT if isinstance(event, NoInput) else PromptKey.NOT_UNDERSTOOD
    return Turn(replace(state, tries=tries), preface=(Say(key),))


def _goto(state: VoiceState, step: Step, **changes: Any) -> VoiceState:
    return replace(state, step=step, tries=0, **changes)


def _language(state: VoiceState, event: Event, _ctx: FlowContext) -> Turn:
    state = replace(state, greeted=True)
    if isinstance(event, Keys) and event.digits[:1] in LANGUAGE_MENU:
        language = LANGUAGE_MENU[event.digits[:1]]
        preface: tuple[Say, ...] = ()
        if language != DEFAULT_LANGUAGE:
            # The greeting's emergency advice was in English: say it again in their language.
            preface = (Say(PromptKey.EMERGENCY),)
        return Turn(
            _goto(state, Step.MAIN_MENU, language=language, language_chosen=True),
            preface=preface,
        )
    return _retry(state, event, Turn(_goto(state, Step.MAIN_MENU)))


def _main_menu(state: VoiceState, event: Event, _ctx: FlowContext) -> Turn:
    if isinstance(event, Keys):
        key = event.digits[:1]
        if key == "1":
            return Turn(_goto(state, Step.CATEGORY))
        if key == "2":
            return Turn(_goto(state, Step.FOLLOWUP_REPORT, followup_attempts=0))
        if key == VOICE_MENU_KEY:
            return Turn(_goto(state, Step.CONFIRM_REPORT, confirm_attempts=0))
        if key == "*":
            return Turn(replace(state, tries=0))
    # A caller who cannot work the menu most likely wants to report something.
    return _retry(state, event, Turn(_goto(state, Step.CATEGORY)))


def _category(state: VoiceState, event: Event, _ctx: FlowContext) -> Turn:
    if isinstance(event, Keys) and event.digits[:1] in CATEGORY_MENU:
        return Turn(_goto(state, Step.SCHOOL, category=CATEGORY_MENU[event.digits[:1]]))
    return _retry(state, event, Turn(_goto(state, Step.SCHOOL, category=Category.OTHER)))


def _school_settled(
    state: VoiceState, school: SchoolRef | None, preface: tuple[Say, ...] = ()
) -> Turn:
    """Category and school are known (the school perhaps as unknown): create the tip now."""
    category = state.category or Category.OTHER
    new_state = _goto(
        state,
        Step.RECORD,
        category=category,
        school_id=None if school is None else school.id,
        school_unknown=school is None,
        school_candidate=None,
        record_tries=0,
    )
    if school is None:
        preface = (*preface, Say(PromptKey.SCHOOL_UNKNOWN))
    effects: tuple[Effect, ...] = (
        CreateTip(category, None if school is None else school.id, state.language),
    )
    if school is None and state.school_candidate is not None:
        effects = (SchoolNoted(state.school_candidate.id), *effects)
    return Turn(new_state, effects, preface)


def _school_failed(state: VoiceState, preface: tuple[Say, ...]) -> Turn:
    school_tries = state.school_tries + 1
    if school_tries >= MAX_SCHOOL_TRIES:
        return _school_settled(replace(state, school_tries=school_tries), None, preface)
    return Turn(replace(state, school_tries=school_tries, tries=0), preface=preface)


def _school(state: VoiceState, event: Event, ctx: FlowContext) -> Turn:
    if isinstance(event, Keys):
        digits = event.digits.strip("#*")
        if digits == "0":
            return _school_settled(state, None)
        if not digits or not digits.isdigit():
            return _school_failed(state, (Say(PromptKey.NOT_UNDERSTOOD),))
        school = ctx.school_by_code(digits[:16])
        if school is None:
            return _school_failed(
                state, (Say(PromptKey.SCHOOL_CODE_NOT_FOUND, {"code": Digits(digits[:16])}),)
            )
        return Turn(_goto(state, Step.SCHOOL_CONFIRM, school_candidate=school))
    if isinstance(event, Speech):
        words = event.text.strip()
        if ctx.dont_know(words, state.language):
            return _school_settled(state, None)
        code = ctx.spoken_code(words)
        school = ctx.school_by_code(code) if code else None
        if school is None:
            school = ctx.match_school(words, state.language)
        if school is None:
            return _school_failed(state, (Say(PromptKey.SCHOOL_NOT_FOUND),))
        return Turn(_goto(state, Step.SCHOOL_CONFIRM, school_candidate=school))
    # Silence: the caller may not know the school or may not want to say it.
    return _school_failed(state, (Say(PromptKey.NO_INPUT),))


def _school_confirm(state: VoiceState, event: Event, _ctx: FlowContext) -> Turn:
    candidate = state.school_candidate
    if candidate is None:  # cannot happen with a consistent state; recover by asking again
        return Turn(_goto(state, Step.SCHOOL))
    if isinstance(event, Keys) and event.digits[:1] == "1":
        return _school_settled(state, candidate)
    if isinstance(event, Keys) and event.digits[:1] == "2":
        school_tries = state.school_tries + 1
        if school_tries >= MAX_SCHOOL_TRIES:
            return _school_settled(replace(state, school_tries=school_tries), None)
        return Turn(_goto(state, Step.SCHOOL, school_tries=school_tries, school_candidate=None))
    # Not confirmed: go on without a school rather than guess, but keep the candidate noted.
    return _retry(state, event, _school_settled(state, None))


def _record(state: VoiceState, event: Event, _ctx: FlowContext) -> Turn:
    if isinstance(event, Recorded):
        effect = AttachRecording(event.recording_sid, event.recording_url, event.duration_seconds)
        next_step = Step.ENDED if event.hung_up else Step.READBACK
        return Turn(
            _goto(state, next_step, recorded=True, readbacks=0),
            (effect,),
            (Say(PromptKey.REPORT_RECEIVED),),
        )
    record_tries = state.record_tries + 1
    if record_tries >= 2:
        # The tip stands without a recording (category and school may be all an agent needs
        # to act on); the caller still gets the number to follow up.
        return Turn(_goto(state, Step.READBACK, record_tries=record_tries, readbacks=0))
    return Turn(replace(state, record_tries=record_tries), preface=(Say(PromptKey.RECORD_RETRY),))


def _readback(state: VoiceState, event: Event, _ctx: FlowContext) -> Turn:
    if isinstance(event, Keys) and event.digits[:1] == "1" and state.readbacks < MAX_READBACKS:
        return Turn(replace(state, readbacks=state.readbacks + 1))
    return Turn(_goto(state, Step.ENDED), preface=(Say(PromptKey.GOODBYE),))


def _followup_report(state: VoiceState, event: Event, _ctx: FlowContext) -> Turn:
    if isinstance(event, Keys):
        digits = event.digits.strip("#*")
        if digits.isdigit() and 0 < len(digits) <= 16:
            return Turn(_goto(state, Step.FOLLOWUP_PIN, followup_report=digits))
    return _retry(state, event, _leave_message(state))


def _followup_pin(state: VoiceState, event: Event, ctx: FlowContext) -> Turn:
    report = state.followup_report or ""
    if isinstance(event, Keys):
        pin = event.digits.strip("#*")
        tip_id = ctx.followup_tip(report, pin) if pin.isdigit() and len(pin) <= 16 else None
        if tip_id is not None:
            return Turn(
                _goto(state, Step.FOLLOWUP_MENU, tip_id=tip_id, messages_read=False),
                (FollowupSucceeded(tip_id),),
            )
        attempts = state.followup_attempts + 1
        effects: tuple[Effect, ...] = (FollowupFailed(report),)
        preface = (Say(PromptKey.FOLLOWUP_NO_MATCH),)
        if attempts >= MAX_FOLLOWUP_ATTEMPTS:
            turn = _leave_message(state)
            return Turn(turn.state, effects, preface + turn.preface)
        return Turn(
            _goto(state, Step.FOLLOWUP_REPORT, followup_attempts=attempts, followup_report=None),
            effects,
            preface,
        )
    return _retry(state, event, _leave_message(state))


def _leave_message(state: VoiceState) -> Turn:
    return Turn(_goto(state, Step.LEAVE_MESSAGE, record_tries=0, followup_report=None))


def _followup_menu(state: VoiceState, event: Event, _ctx: FlowContext) -> Turn:
    if isinstance(event, Keys) and event.digits[:1] == "2":
        return Turn(replace(state, tries=0, messages_read=False))
    # "1", or anything else, or silence: the recording chance every path reaches.
    return Turn(_goto(state, Step.FOLLOWUP_RECORD, record_tries=0))


def _followup_record(state: VoiceState, event: Event, _ctx: FlowContext) -> Turn:
    if isinstance(event, Recorded):
        effect = AttachRecording(
            event.recording_sid, event.recording_url, event.duration_seconds, followup=True
        )
        return Turn(
            _goto(state, Step.ENDED),
            (effect,),
            () if event.hung_up else (Say(PromptKey.FOLLOWUP_ADDED), Say(PromptKey.GOODBYE)),
        )
    if state.record_tries + 1 >= 2:
        return Turn(_goto(state, Step.ENDED), preface=(Say(PromptKey.NO_MESSAGE_GOODBYE),))
    return Turn(
        replace(state, record_tries=state.record_tries + 1),
        preface=(Say(PromptKey.RECORD_RETRY),),
    )


def _leave_message_step(state: VoiceState, event: Event, _ctx: FlowContext) -> Turn:
    if isinstance(event, Recorded):
        effects: tuple[Effect, ...] = (
            CreateTipForMessage(state.language),
            AttachRecording(event.recording_sid, event.recording_url, event.duration_seconds),
        )
        next_step = Step.ENDED if event.hung_up else Step.READBACK
        return Turn(
            _goto(state, next_step, recorded=True, readbacks=0),
            effects,
            (Say(PromptKey.REPORT_RECEIVED),),
        )
    if state.record_tries + 1 >= 2:
        return Turn(_goto(state, Step.ENDED), preface=(Say(PromptKey.NO_MESSAGE_GOODBYE),))
    return Turn(
        replace(state, record_tries=state.record_tries + 1),
        preface=(Say(PromptKey.RECORD_RETRY),),
    )


def _confirm_report(state: VoiceState, event: Event, ctx: FlowContext) -> Turn:
    """The report number of an alert to confirm. An unknown report and one not sent to the
    caller's number are answered alike; after a few, the menu again."""
    if isinstance(event, Keys):
        digits = event.digits.strip("#*")
        if digits.isdigit() and len(digits) <= 16:
            if ctx.may_confirm(digits):
                return Turn(
                    _goto(state, Step.CONFIRM_MORE),
                    (ConfirmReport(digits),),
                    (Say(PromptKey.CONFIRM_RECORDED, {"report_number": Digits(digits)}),),
                )
            attempts = state.confirm_attempts + 1
            preface: tuple[Say, ...] = (Say(PromptKey.CONFIRM_NO_MATCH),)
            if attempts >= MAX_CONFIRM_ATTEMPTS:
                preface += (Say(PromptKey.CONFIRM_OTHER_WAYS),)
                return Turn(_goto(state, Step.MAIN_MENU, confirm_attempts=0), preface=preface)
            return Turn(_goto(state, Step.CONFIRM_REPORT, confirm_attempts=attempts), (), preface)
    return _retry(state, event, Turn(_goto(state, Step.MAIN_MENU, confirm_attempts=0)))


def _confirm_more(state: VoiceState, event: Event, _ctx: FlowContext) -> Turn:
    if isinstance(event, Keys) and event.digits[:1] == "1":
        return Turn(_goto(state, Step.CONFIRM_REPORT, confirm_attempts=0))
    if isinstance(event, Keys) and event.digits[:1] == "2":
        return Turn(_goto(state, Step.MAIN_MENU))
    ended = Turn(_goto(state, Step.ENDED), preface=(Say(PromptKey.CONFIRM_GOODBYE),))
    return _retry(state, event, ended)


#: Every step's handler takes (state, event, ctx); one that asks the context nothing names it
#: ``_ctx``.
_HANDLERS = {
    Step.LANGUAGE: _language,
    Step.MAIN_MENU: _main_menu,
    Step.CATEGORY: _category,
    Step.SCHOOL: _school,
    Step.SCHOOL_CONFIRM: _school_confirm,
    Step.RECORD: _record,
    Step.READBACK: _readback,
    Step.FOLLOWUP_REPORT: _followup_report,
    Step.FOLLOWUP_PIN: _followup_pin,
    Step.FOLLOWUP_MENU: _followup_menu,
    Step.FOLLOWUP_RECORD: _followup_record,
    Step.LEAVE_MESSAGE: _leave_message_step,
    Step.CONFIRM_REPORT: _confirm_report,
    Step.CONFIRM_MORE: _confirm_more,
}


def _language_script(state: VoiceState) -> Ask:
    """Each language offered in its own voice, after the greeting on the first pass."""
    options = tuple(
        Say(PromptKey.LANGUAGE_OPTION, {"digit": digit}, language=code)
        for digit, code in LANGUAGE_MENU.items()
    )
    greeting: tuple[Say, ...] = ()
    if not state.greeted:
        greeting = (
            Say(PromptKey.GREETING, language=DEFAULT_LANGUAGE),
            Say(PromptKey.EMERGENCY, language=DEFAULT_LANGUAGE),
        )
    return Ask(greeting + options, num_digits=1)


def _school_confirm_script(state: VoiceState) -> Ask:
    name = state.school_candidate.name if state.school_candidate else ""
    return Ask((Say(PromptKey.SCHOOL_CONFIRM, {"school": name}),), num_digits=1)


def _readback_script(state: VoiceState, pin: str | None) -> Ask | HangUp:
    """The report number and PIN, offered again until MAX_READBACKS; without both to read, only
    goodbye."""
    says: tuple[Say, ...] = ()
    if state.report_number and pin:
        says = (
            Say(
                PromptKey.READBACK,
                {"report_number": Digits(state.report_number), "pin": Digits(pin)},
            ),
        )
        if state.readbacks == 0:
            says += (Say(PromptKey.READBACK_WRITE_DOWN),)
    if state.readbacks >= MAX_READBACKS or not says:
        return HangUp((*says, Say(PromptKey.GOODBYE)))
    return Ask((*says, Say(PromptKey.READBACK_MENU)), num_digits=1)


def _followup_menu_script(state: VoiceState, ctx: FlowContext) -> tuple[Ask, tuple[Effect, ...]]:
    """The follow-up menu, after the messages for the reporter unless they were just read; the
    effect records which messages were heard."""
    assert state.tip_id is not None
    messages = ctx.messages_for_reporter(state.tip_id)
    says: tuple[Say, ...] = ()
    effects: tuple[Effect, ...] = ()
    if not state.messages_read:
        if messages:
            says = (
                Say(PromptKey.MESSAGES_INTRO),
                *(
                    Say(PromptKey.MESSAGE_ITEM, {"number": str(i), "text": m.text})
                    for i, m in enumerate(messages, 1)
                ),
            )
            effects = (MessagesHeard(state.tip_id, tuple(m.id for m in messages)),)
        else:
            says = (Say(PromptKey.MESSAGES_NONE),)
    return Ask((*says, Say(PromptKey.FOLLOWUP_MENU)), num_digits=1), effects


#: The steps whose script is always the same. Factories rather than shared objects, so that every
#: call gets a script of its own (Say.params is a dict).
_FIXED_SCRIPTS: dict[Step, Callable[[], Script]] = {
    Step.MAIN_MENU: lambda: Ask((Say(PromptKey.MAIN_MENU),), num_digits=1),
    Step.CATEGORY: lambda: Ask((Say(PromptKey.CATEGORY_MENU),), num_digits=1),
    Step.SCHOOL: lambda: Ask((Say(PromptKey.SCHOOL_ASK),), speech=True, timeout=8),
    Step.RECORD: lambda: RecordMessage((Say(PromptKey.RECORD_INSTRUCTIONS),)),
    Step.FOLLOWUP_REPORT: lambda: Ask((Say(PromptKey.FOLLOWUP_REPORT),), timeout=10),
    Step.FOLLOWUP_PIN: lambda: Ask((Say(PromptKey.FOLLOWUP_PIN),), timeout=10),
    Step.FOLLOWUP_RECORD: lambda: RecordMessage((Say(PromptKey.FOLLOWUP_RECORD),)),
    Step.LEAVE_MESSAGE: lambda: RecordMessage((Say(PromptKey.FOLLOWUP_LEAVE_MESSAGE),)),
    Step.CONFIRM_REPORT: lambda: Ask((Say(PromptKey.CONFIRM_ASK),), timeout=10),
    Step.CONFIRM_MORE: lambda: Ask((Say(PromptKey.CONFIRM_MORE),), num_digits=1),
}


def script(
    state: VoiceState, ctx: FlowContext, *, pin: str | None = None
) -> tuple[Script, tuple[Effect, ...]]:
    """What the caller hears at ``state.step``, and any effect of hearing it (messages read)."""
    step = state.step
    if step is Step.LANGUAGE:
        return _language_script(state), ()
    if step is Step.SCHOOL_CONFIRM:
        return _school_confirm_script(state), ()
    if step is Step.READBACK:
        return _readback_script(state, pin), ()
    if step is Step.FOLLOWUP_MENU:
        return _followup_menu_script(state, ctx)
    fixed = _FIXED_SCRIPTS.get(step)
    if fixed is None:  # ENDED
        return HangUp(()), ()
    return fixed(), ()


def mark_messages_read(state: VoiceState) -> VoiceState:
    return replace(state, messages_read=True) if state.step is Step.FOLLOWUP_MENU else state
