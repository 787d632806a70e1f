"""Whole calls to the hotline, played by the Twilio-faithful driver against the real app."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import func, select

from hotline.core.clock import ManualClock
from hotline.core.tips import FOLLOWUP_LOCK_AFTER, leave_message_for_reporter
from hotline.directory import import_directory, sample_directory
from hotline.models import (
    ActorType,
    Recording,
    Tip,
    TipEvent,
    TipLevel,
    TipStatus,
    WebhookReceipt,
)
from hotline.models import (
    Call as CallRow,
)
from hotline.services import hotline
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.ivr_driver import Call, VoiceDriver, digits_after

ENGLISH = ("en-US", "Polly.Joanna-Neural")
SPANISH = ("es-US", "Polly.Lupe-Neural")


@pytest.fixture
def app(make_app: Callable[..., Flask], clock: ManualClock) -> Flask:
    app = make_app()
    result = import_directory(hotline(app).db, clock, sample_directory())
    assert result.ok
    return app


@pytest.fixture
def driver(app: Flask) -> VoiceDriver:
    return VoiceDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)


def tips(app: Flask) -> list[Tip]:
    with hotline(app).db.sessionmaker() as s:
        rows = s.scalars(select(Tip).order_by(Tip.id)).all()
        for tip in rows:
            _ = tip.events, tip.recordings, tip.school
        return list(rows)


def count(app: Flask, model: type) -> int:
    with hotline(app).db.sessionmaker() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def new_report(
    call: Call, *, language: str = "1", category: str = "1", school_keys: str = "1101#"
) -> Call:
    call.press(language)
    call.press("1")
    call.press(category)
    call.press(school_keys)
    return call


def finish_report(call: Call) -> tuple[str, str]:
    """Confirm the school, record, and read the report number and PIN off the call."""
    call.press("1")
    assert call.waiting_for == "record"
    call.record(duration=20)
    text = call.heard_text_since_last_action()
    return digits_after(text, "report number|número de denuncia"), digits_after(text, "PIN")


# A whole report ------------------------------------------------------------------------------


def test_whole_report_in_english(app: Flask, driver: VoiceDriver) -> None:
    call = driver.call()
    greeting = call.heard_text_since_last_action()
    assert "9 1 1" in greeting
    assert "9 8 8" in greeting
    assert call.current_gather is not None
    assert call.current_gather["numDigits"] == "1"
    new_report(call)
    assert "Lakeview High School" in call.last_heard_text()
    report_number, pin = finish_report(call)
    assert 6 <= len(report_number) <= 8
    assert 4 <= len(pin) <= 6
    # Replay, then silence: goodbye and the call ends.
    call.press("1")
    assert digits_after(call.heard_text_since_last_action(), "report number") == report_number
    call.silence()
    assert call.ended
    assert "Goodbye" in call.last_heard_text()

    [tip] = tips(app)
    assert tip.report_number == report_number
    assert tip.status is TipStatus.OPEN
    assert (tip.category, tip.level, tip.type) == (
        "threat",
        TipLevel.CRITICAL,
        "threat_of_violence",
    )
    assert tip.school is not None
    assert tip.school.code == "1101"
    assert tip.language == "en"
    assert hotline(app).keyring.check_pin(report_number, pin, tip.pin_hash, tip.pin_key_id)
    assert [r.sid for r in tip.recordings] == [call.recordings[0].sid]
    assert [e.kind for e in tip.events] == [
        "tip.received",
        "call.caller_verification",
        "recording.added",
        "tip.opened",
    ]
    assert tip.events[0].actor_type is ActorType.REPORTER
    # The driver's call carries no StirVerstat: the agents see that it said nothing.
    assert tip.events[1].data == {"stir_verstat": None, "reached_by": "tip.created"}
    with hotline(app).db.sessionmaker() as s:
        row = s.scalars(select(CallRow)).one()
        assert row.tip_id == tip.id
        assert row.status == "completed"
        assert "pin_sealed" not in str({k: v for k, v in row.flow_state.items() if v})
    assert tip.recordings[0].status == "completed"  # its status callback was stored


def test_every_say_after_choosing_spanish_is_spanish(app: Flask, driver: VoiceDriver) -> None:
    call = driver.call()
    before = len(call.heard)
    new_report(call, language="2")
    finish_report(call)
    after = call.heard[before:]
    assert after
    assert all((h.language, h.voice) == SPANISH for h in after)
    spoken = " ".join(h.text for h in after)
    assert "Lakeview High School" in spoken
    assert "número de denuncia" in spoken
    assert tips(app)[0].language == "es"
    # The language menu itself offered each language in its own voice.
    offers = [h for h in call.heard[:before] if "press" in h.text or "oprima" in h.text]
    assert {(h.language, h.voice) for h in offers} == {ENGLISH, SPANISH}


@pytest.mark.parametrize(
    ("key", "category", "level"),
    [
        ("1", "threat", TipLevel.CRITICAL),
        ("2", "self_harm", TipLevel.CRITICAL),
        ("3", "bullying", TipLevel.STANDARD),
        ("4", "drugs", TipLevel.STANDARD),
        ("5", "other", TipLevel.STANDARD),
    ],
)
def test_each_category_sets_the_provisional_level(
    key: str, category: str, level: TipLevel, app: Flask, driver: VoiceDriver
) -> None:
    call = new_report(driver.call(), category=key)
    finish_report(call)
    [tip] = tips(app)
    assert (tip.category, tip.level) == (category, level)


def test_tip_exists_before_the_recording(app: Flask, driver: VoiceDriver) -> None:
    call = new_report(driver.call())
    call.press("1")
    assert call.waiting_for == "record"
    [tip] = tips(app)
    assert tip.status is TipStatus.INTAKE
    assert tip.school is not None


# The school ----------------------------------------------------------------------------------


def test_school_by_speech_with_a_recognition_error(app: Flask, driver: VoiceDriver) -> None:
    call = driver.call()
    call.press("1")
    call.press("1")
    call.press("3")
    gather = call.current_gather
    assert gather is not None
    assert gather["input"] == "dtmf speech"
    assert "Northshore" in gather.get("hints", "")
    call.say_speech("north shore elementry", confidence=0.42)
    assert "Northshore Elementary School" in call.last_heard_text()
    finish_report(call)
    assert tips(app)[0].school.code == "1103"  # type: ignore[union-attr]


SPANISH_NAMED_SCHOOLS = (
    "lakeview,Lakeview Unified School District,America/Chicago,1190,Escuela 11,school_contact,1,"
    "Ana Ruiz (Directora),(312) 555-0190,yes,a.ruiz@lakeview.example.org,US-IL,\n"
    "lakeview,Lakeview Unified School District,America/Chicago,1191,Oncewood Elementary,"
    "school_contact,1,Ben Oakes (Principal),(312) 555-0191,yes,"
    "b.oakes@lakeview.example.org,US-IL,\n"
)


def test_a_spanish_caller_names_the_school_in_spanish_number_words(
    make_app: Callable[..., Flask], clock: ManualClock
) -> None:
    app = make_app()
    directory = sample_directory() + SPANISH_NAMED_SCHOOLS.encode()
    assert import_directory(hotline(app).db, clock, directory).ok
    call = VoiceDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN).call()
    call.press("2")  # español
    call.press("1")
    call.press("3")
    call.say_speech("escuela once")  # "once" is eleven in Spanish
    assert "Escuela 11" in call.last_heard_text()
    finish_report(call)
    assert tips(app)[0].school.code == "1190"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "answers",
    [
        ["0"],
        ["speech:I don't know"],
        ["9999#", "8888#"],
        ["speech:pizza", "speech:xylophone"],
        ["1101#", "2", "speech:purple"],
    ],
    ids=["zero", "dont-know", "two-wrong-codes", "two-no-matches", "rejected-then-no-match"],
)
def test_unknown_school_goes_on_to_the_recording(
    answers: list[str], app: Flask, driver: VoiceDriver
) -> None:
    call = driver.call()
    call.press("1")
    call.press("1")
    call.press("1")
    for answer in answers:
        if answer.startswith("speech:"):
            call.say_speech(answer.removeprefix("speech:"))
        else:
            call.press(answer)
    assert call.waiting_for == "record"
    [tip] = tips(app)
    assert tip.school is None
    assert tip.level is TipLevel.CRITICAL


# Follow-up -----------------------------------------------------------------------------------


def make_report(driver: VoiceDriver) -> tuple[str, str]:
    call = new_report(driver.call(from_="+14155550123"))
    numbers = finish_report(call)
    call.silence()
    return numbers


def follow_up(
    driver: VoiceDriver,
    report: str,
    pin: str,
    *,
    language: str = "1",
    extra_params: dict[str, str] | None = None,
) -> Call:
    call = driver.call(from_="+14155550199", extra_params=extra_params)
    call.press(language)
    call.press("2")
    call.press(report + "#")
    call.press(pin + "#")
    return call


def test_follow_up_hears_messages_and_adds_information(
    app: Flask, driver: VoiceDriver, clock: ManualClock
) -> None:
    report, pin = make_report(driver)
    services = hotline(app)
    with services.db.session() as s:
        tip = s.scalars(select(Tip)).one()
        leave_message_for_reporter(
            s, tip, "Which class is he in?", actor_type=ActorType.AGENT, actor_id=3, now=clock.now()
        )
    clock.advance(3600)
    call = follow_up(driver, report, pin)
    heard = call.heard_text_since_last_action()
    assert "Which class is he in?" in heard
    call.press("1")
    call.record(duration=9)
    assert "added" in call.heard_text_since_last_action()
    [tip] = tips(app)
    assert len(tip.recordings) == 2
    kinds = [e.kind for e in tip.events]
    assert kinds[-4:] == [
        "followup.started",
        "call.caller_verification",
        "messages.heard",
        "followup.recording",
    ]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("TN-Validation-Passed-A", "TN-Validation-Passed-A"),
        ("TN-Validation-Failed-B", "TN-Validation-Failed-B"),
        ("No-TN-Validation", "No-TN-Validation"),
        ("<script>", "unrecognised"),
    ],
)
def test_the_caller_id_verification_is_on_the_timeline(
    app: Flask, driver: VoiceDriver, given: str, kept: str
) -> None:
    """StirVerstat is not dropped with the caller's location: agents judge a call by it, on
    the tip the call made and on the tip it followed up."""
    call = driver.call(extra_params={"StirVerstat": given, "CallerName": "JANE DOE"})
    new_report(call)
    report, pin = finish_report(call)
    call.silence()
    follow_up(driver, report, pin, extra_params={"StirVerstat": "No-TN-Validation"})
    [tip] = tips(app)
    noted = [e.data for e in tip.events if e.kind == "call.caller_verification"]
    assert noted == [
        {"stir_verstat": kept, "reached_by": "tip.created"},
        {"stir_verstat": "No-TN-Validation", "reached_by": "followup"},
    ]
    assert "JANE DOE" not in str([e.data for e in tip.events])


def test_follow_up_without_messages(driver: VoiceDriver) -> None:
    report, pin = make_report(driver)
    call = follow_up(driver, report, pin)
    assert "no messages" in call.heard_text_since_last_action()


def test_wrong_pin_sounds_exactly_like_an_unknown_report(app: Flask, driver: VoiceDriver) -> None:
    report, pin = make_report(driver)
    wrong_pin = "1" * len(pin) if pin != "1" * len(pin) else "2" * len(pin)
    wrong = follow_up(driver, report, wrong_pin).heard_since_last_action()
    unknown_report = "9" + report[1:] if report[0] != "9" else "8" + report[1:]
    unknown = follow_up(driver, unknown_report, pin).heard_since_last_action()
    assert wrong == unknown
    assert "do not match" in " ".join(h.text for h in wrong)
    [tip] = tips(app)
    assert tip.followup_failures == 1


def test_lockout_after_repeated_wrong_pins_across_calls(
    app: Flask, driver: VoiceDriver, clock: ManualClock
) -> None:
    report, pin = make_report(driver)
    for _ in range(FOLLOWUP_LOCK_AFTER):
        follow_up(driver, report, "0000").hang_up()
    locked = follow_up(driver, report, pin)
    assert "do not match" in locked.heard_text_since_last_action()
    clock.advance(2 * 3600)
    unlocked = follow_up(driver, report, pin)
    assert "no messages" in unlocked.heard_text_since_last_action()
    kinds = [e.kind for e in tips(app)[0].events]
    assert "followup.locked" in kinds


def test_three_wrong_tries_in_one_call_still_take_a_message(
    app: Flask, driver: VoiceDriver
) -> None:
    call = driver.call()
    call.press("1")
    call.press("2")
    for _ in range(3):
        call.press("123456#")
        call.press("9999#")
    assert call.waiting_for == "record"
    call.record(duration=15)
    report = digits_after(call.heard_text_since_last_action(), "report number")
    [tip] = tips(app)
    assert tip.report_number == report
    assert tip.status is TipStatus.OPEN
    assert tip.level is TipLevel.STANDARD
    assert len(tip.recordings) == 1


# Hang-ups and silence ------------------------------------------------------------------------

HANG_UP_AT: dict[str, list[str]] = {
    "language": [],
    "main-menu": ["1"],
    "category": ["1", "1"],
    "school": ["1", "1", "2"],
    "school-confirm": ["1", "1", "2", "1102#"],
    "record": ["1", "1", "2", "1102#", "1"],
    "followup-report": ["1", "2"],
    "followup-pin": ["1", "2", "123456#"],
    "confirm-report": ["1", "3"],
}


@pytest.mark.parametrize("step", list(HANG_UP_AT))
def test_hang_up_at_every_step_keeps_what_was_gathered(
    step: str, app: Flask, driver: VoiceDriver
) -> None:
    call = driver.call()
    for keys in HANG_UP_AT[step]:
        call.press(keys)
    call.hang_up()
    assert call.ended
    assert call.final_status == "completed"
    found = tips(app)
    if step in ("language", "main-menu", "followup-report", "followup-pin", "confirm-report"):
        assert found == []  # nothing about a tip was given
        return
    [tip] = found
    assert tip.status is TipStatus.INCOMPLETE
    assert tip.events[-1].kind == "tip.incomplete"
    assert tip.category == ("self_harm" if step != "category" else None)
    if step in ("record",):
        assert tip.school is not None
        assert tip.school.code == "1102"
    if step == "school-confirm":
        assert any(e.kind == "school.unconfirmed" for e in tip.events)


def test_hang_up_while_recording_keeps_the_recording(app: Flask, driver: VoiceDriver) -> None:
    call = new_report(driver.call())
    call.press("1")
    call.record(duration=30, hang_up=True)
    assert call.ended
    [tip] = tips(app)
    assert tip.status is TipStatus.OPEN
    assert len(tip.recordings) == 1


def test_hang_up_during_readback_leaves_an_open_tip(app: Flask, driver: VoiceDriver) -> None:
    call = new_report(driver.call())
    finish_report(call)
    call.hang_up()
    [tip] = tips(app)
    assert tip.status is TipStatus.OPEN


def test_silence_everywhere_reaches_a_recording_chance_then_ends(
    app: Flask, driver: VoiceDriver
) -> None:
    call = driver.call()
    saw_record = False
    for _ in range(40):
        if call.ended:
            break
        saw_record |= call.waiting_for == "record"
        call.silence()
    assert call.ended
    assert saw_record
    assert "9 1 1" in call.last_heard_text()
    [tip] = tips(app)  # the silent caller's intake is kept for agents
    assert tip.school is None
    assert tip.category == "other"


def test_record_without_audio_is_asked_again_then_moves_on(app: Flask, driver: VoiceDriver) -> None:
    call = new_report(driver.call())
    call.press("1")
    call.silence()
    assert call.waiting_for == "record"
    assert "try again" in call.heard_text_since_last_action()
    call.silence()
    assert "report number" in call.heard_text_since_last_action()
    [tip] = tips(app)
    assert tip.status is TipStatus.OPEN
    assert tip.recordings == []


# Retries, forgeries, malformed input, failures -----------------------------------------------


def test_retried_webhooks_never_create_a_second_tip_or_event(
    app: Flask, driver: VoiceDriver
) -> None:
    call = driver.call()
    first = call.last_request.body
    assert call.redeliver_last().get_data(as_text=True) == first
    for keys in ("1", "1", "1", "1101#", "1"):
        call.press(keys)
        before = (count(app, Tip), count(app, TipEvent), count(app, WebhookReceipt))
        body = call.last_request.body
        again = call.redeliver_last()
        assert again.status_code == 200
        assert again.get_data(as_text=True) == body
        assert (count(app, Tip), count(app, TipEvent), count(app, WebhookReceipt)) == before
    recording = call.record(duration=5)
    before = (count(app, TipEvent), count(app, Recording))
    call.redeliver_last()
    recording.deliver()
    assert (count(app, TipEvent), count(app, Recording)) == before
    assert count(app, Tip) == 1


def test_forged_voice_webhook_is_refused_and_stores_nothing(app: Flask) -> None:
    client = app.test_client()
    params = {
        "CallSid": "CA" + "1" * 32,
        "From": "+14155550123",
        "To": "+13125550100",
        "CallStatus": "ringing",
        "AccountSid": "AC" + "0" * 32,
    }
    for headers in ({}, {"X-Twilio-Signature": "bm90LWEtc2lnbmF0dXJl"}):
        assert client.post("/twilio/voice", data=params, headers=headers).status_code == 403
        assert (
            client.post(
                "/twilio/voice/step?n=1&e=input", data={**params, "Digits": "1"}, headers=headers
            ).status_code
            == 403
        )
    assert count(app, CallRow) == 0
    assert count(app, WebhookReceipt) == 0


@pytest.mark.parametrize(
    "params",
    [
        {"From": "anonymous"},
        {"From": ""},
        {"From": "+266696687"},
        {"From": "x" * 5000, "CallerName": "Z" * 5000},
        {"From": "+1415555\x000123", "ForwardedFrom": "\x1b[31m"},
    ],
)
def test_malformed_caller_parameters_never_give_a_500(
    params: dict[str, str], app: Flask, driver: VoiceDriver
) -> None:
    call = driver.call(from_=params.pop("From"), extra_params=params)
    assert call.last_request.status_code == 200
    assert call.waiting_for == "gather"
    new_report(call, language="1")
    finish_report(call)
    assert len(tips(app)) == 1


@pytest.mark.parametrize(
    "digits", ["", "#", "*" * 40, "1" * 10_000, "\x00\x01", "\u0661"], ids=repr
)
def test_malformed_keypresses_are_asked_again(digits: str, app: Flask, driver: VoiceDriver) -> None:
    call = driver.call()
    call.press("1")
    n = re.search(r"n=(\d+)", call.current_gather["action"]).group(1)  # type: ignore[index,union-attr]
    r = app.test_client().post(
        f"/twilio/voice/step?n={n}&e=input",
        data={"CallSid": call.sid, "Digits": digits, "From": call.from_},
        headers={
            "X-Twilio-Signature": driver.sign(
                driver.url(f"/twilio/voice/step?n={n}&e=input"),
                {"CallSid": call.sid, "Digits": digits, "From": call.from_},
            )
        },
    )
    assert r.status_code == 200
    assert b"<Gather" in r.data


def test_an_exception_in_the_menu_still_answers_twiml_and_keeps_the_message(
    app: Flask, driver: VoiceDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ivr_flows import flow

    call = driver.call(extra_params={"StirVerstat": "TN-Validation-Passed-B"})
    call.press("1")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away +14155550123")

    monkeypatch.setattr(flow, "advance", broken)
    call.press("1")
    assert "something went wrong" in call.heard_text_since_last_action()
    assert call.waiting_for == "record"
    monkeypatch.undo()
    call.record(duration=8)
    assert call.ended
    assert "Thank you" in call.last_heard_text()
    [tip] = tips(app)
    assert len(tip.recordings) == 1
    assert tip.channel.value == "voice"
    noted = [e.data for e in tip.events if e.kind == "call.caller_verification"]
    assert noted == [{"stir_verstat": "TN-Validation-Passed-B", "reached_by": "tip.created"}]


def reach(step: str, driver: VoiceDriver) -> Call:
    """A call waiting at ``step`` (follow-up steps use a report made first)."""
    if step.startswith("followup") and step not in HANG_UP_AT:
        report, pin = make_report(driver)
        call = follow_up(driver, report, pin)
        if step == "followup-record":
            call.press("1")
        return call
    if step == "leave-message":
        call = driver.call()
        for keys in ("1", "2", *(["1234567#", "9999#"] * 3)):
            call.press(keys)
        return call
    if step == "readback":
        call = new_report(driver.call())
        finish_report(call)
        return call
    call = driver.call()
    for keys in HANG_UP_AT[step]:
        call.press(keys)
    return call


EVERY_PROMPT = [*HANG_UP_AT, "readback", "followup-menu", "followup-record", "leave-message"]


@pytest.mark.parametrize("step", EVERY_PROMPT)
def test_silence_at_every_prompt_is_handled_and_the_call_ends_after_a_recording_chance(
    step: str, driver: VoiceDriver
) -> None:
    call = reach(step, driver)
    assert call.waiting_for in ("gather", "record"), step
    record_offered = call.waiting_for == "record" or step in ("readback",)
    call.silence()
    after = call.heard_text_since_last_action()
    # Asked again, saying it heard nothing, or moved on: never dead air in return.
    assert after.strip()
    if step in (
        "language",
        "main-menu",
        "category",
        "followup-report",
        "followup-pin",
        "confirm-report",
    ):
        assert "didn't hear anything" in after
    for _ in range(30):
        if call.ended:
            break
        record_offered |= call.waiting_for == "record"
        call.silence()
    assert call.ended, step
    assert record_offered, step
    assert call.last_request.status_code == 200


@pytest.mark.parametrize("step", ["followup-menu", "followup-record", "leave-message"])
def test_hang_up_in_follow_up_changes_nothing_on_the_tip(
    step: str, app: Flask, driver: VoiceDriver
) -> None:
    call = reach(step, driver)
    before = [(t.id, t.status, len(t.events)) for t in tips(app)]
    call.hang_up()
    assert [(t.id, t.status, len(t.events)) for t in tips(app)] == before


def test_recording_callback_racing_the_record_action_still_reads_back_the_report(
    app: Flask, driver: VoiceDriver
) -> None:
    """Twilio posts the <Record> action and the recording's status callback at the same moment.
    When the callback commits the recording row first, the action applies its turn again."""
    from sqlalchemy import event

    from hotline.core.calls import apply_recording_status

    db = hotline(app).db
    call = new_report(driver.call())
    call.press("1")
    raced: list[bool] = []

    def callback_commits_first(session, _flush_context, _instances):  # type: ignore[no-untyped-def]
        new = [o for o in session.new if isinstance(o, Recording)]
        if raced or not new:
            return
        raced.append(True)
        with db.session() as other:
            apply_recording_status(
                other,
                {
                    "CallSid": call.sid,
                    "RecordingSid": new[0].sid,
                    "RecordingUrl": new[0].url,
                    "RecordingStatus": "completed",
                    "RecordingDuration": "20",
                },
                hotline(app).clock.now(),
            )

    event.listen(db.sessionmaker, "before_flush", callback_commits_first)
    try:
        call.record(duration=20, recording_callback=False)
    finally:
        event.remove(db.sessionmaker, "before_flush", callback_commits_first)
    assert raced
    assert "report number" in call.heard_text_since_last_action()
    [tip] = tips(app)
    assert tip.status is TipStatus.OPEN
    assert len(tip.recordings) == 1
    assert tip.recordings[0].status == "completed"
    assert [e.kind for e in tip.events].count("recording.added") == 1


def test_the_pin_is_never_stored_in_clear(app: Flask, driver: VoiceDriver) -> None:
    """Not in the tip (a keyed hash), not in the call's state (sealed, then wiped), not in the
    webhook receipts kept to answer Twilio's retries (sealed)."""
    call = new_report(driver.call())
    _, pin = finish_report(call)
    spelled = ", ".join(pin)
    raw = hotline(app).db.engine.raw_connection()
    try:
        cur = raw.cursor()
        dump = []
        for table in ("tips", "calls", "webhook_receipts", "tip_events"):
            cur.execute(f"SELECT * FROM {table}")
            dump.append(repr(cur.fetchall()))
    finally:
        raw.close()
    text = "\n".join(dump)
    assert spelled not in text
    assert "Your PIN is" not in text
    # A retry still gets the same answer, opened from the sealed receipt.
    readback = next(r for r in call.requests if spelled in r.body)
    again = app.test_client().post(readback.path, data=readback.params, headers=readback.headers)
    assert again.get_data(as_text=True) == readback.body
