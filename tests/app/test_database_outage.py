"""The database fails under a webhook (restarting, unreachable, a lock timeout): the caller still
gets valid TwiML with 200 and nothing is half-stored. Status callbacks say 503."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import func, select

from hotline import db as db_module
from hotline.core.clock import ManualClock
from hotline.directory import import_directory, sample_directory
from hotline.models import Call, Recording, Tip, TipMessage, WebhookReceipt
from hotline.services import hotline
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.faults import database_fails
from tests.support.ivr_driver import VoiceDriver, validate_answer
from tests.support.texting import reply_of, sms
from tests.support.twilio_driver import TwilioDriver

STRANGER = "+17735550199"
STORED = (Tip, Call, Recording, TipMessage, WebhookReceipt)


@pytest.fixture
def app(make_app: Callable[..., Flask], clock: ManualClock) -> Flask:
    app = make_app()
    assert import_directory(hotline(app).db, clock, sample_directory()).ok
    return app


def stored(app: Flask) -> dict[str, int]:
    with hotline(app).db.sessionmaker() as s:
        return {m.__name__: int(s.scalar(select(func.count()).select_from(m)) or 0) for m in STORED}


NOTHING = {m.__name__: 0 for m in STORED}


def test_a_call_during_an_outage_hears_the_apology_and_can_record(app: Flask) -> None:
    # No status callbacks here (they answer 503: a test of their own below).
    driver = VoiceDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN, status_path=None)
    with database_fails(app):
        call = driver.call()
        assert call.last_request.status_code == 200
        assert "something went wrong" in call.heard_text_since_last_action()
        assert call.waiting_for == "record"
        record = call.current_record
        assert record is not None
        assert "/twilio/voice/rescue" in record["action"]
        assert record["recordingStatusCallback"].endswith("/twilio/recording/status")
        call.record(duration=15, recording_callback=False)
        assert call.last_request.status_code == 200
        assert call.ended
        assert "Thank you" in call.last_heard_text()
    assert stored(app) == NOTHING


def test_the_menu_answers_the_apology_when_the_commit_fails(app: Flask) -> None:
    """The turn did its work, then storing its receipt failed: none of the work is kept."""
    driver = VoiceDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN, status_path=None)
    call = driver.call()
    for keys in ("1", "1", "1"):
        call.press(keys)
    before = stored(app)
    with database_fails(
        app, lambda statement: statement.startswith("INSERT INTO webhook_receipts")
    ):
        call.press("1101#")  # would have made the tip
        assert call.last_request.status_code == 200
        assert "something went wrong" in call.heard_text_since_last_action()
        assert call.waiting_for == "record"
    assert stored(app) == before
    assert before["Tip"] == 0


def test_status_callbacks_during_an_outage_answer_503_and_store_nothing(app: Flask) -> None:
    twilio = TwilioDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    call = {"CallSid": "CA" + "1" * 32, "CallStatus": "completed", "SequenceNumber": "3"}
    recording = {
        "CallSid": "CA" + "1" * 32,
        "RecordingSid": "RE" + "1" * 32,
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        "RecordingStatus": "completed",
    }
    with database_fails(app):
        assert twilio.post("/twilio/voice/status", call).status_code == 503
        assert twilio.post("/twilio/recording/status", recording).status_code == 503
    assert stored(app) == NOTHING


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("there is a kid with a gun in the parking lot", "could not take your message"),
        ("hay un chico con una pistola en la escuela", "no pudo recibir su mensaje"),
    ],
)
def test_a_text_during_an_outage_gets_911_and_988_in_its_language(
    app: Flask, body: str, expected: str
) -> None:
    twilio = TwilioDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    with database_fails(app):
        reply = reply_of(twilio.post("/twilio/sms", sms(STRANGER, body)))
    assert reply is not None
    assert expected in reply
    assert "911" in reply
    assert "988" in reply
    assert stored(app) == NOTHING


def test_a_keyword_during_an_outage_is_not_answered(app: Flask) -> None:
    twilio = TwilioDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    with database_fails(app):
        assert reply_of(twilio.post("/twilio/sms", sms(STRANGER, "STOP"))) is None


def test_the_database_back_takes_the_next_webhook_as_usual(app: Flask) -> None:
    twilio = TwilioDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    with database_fails(app):
        reply_of(twilio.post("/twilio/sms", sms(STRANGER, "first, lost to the outage")))
    reply = reply_of(twilio.post("/twilio/sms", sms(STRANGER, "second, after it")))
    assert reply is not None
    assert "PIN" in reply
    assert stored(app)["Tip"] == 1


def test_a_locked_sqlite_file_answers_before_twilio_gives_up(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the write lock: the webhook waits the busy timeout (below Twilio's
    15 s), then answers with its fallback."""
    assert db_module.SQLITE_BUSY_TIMEOUT_SECONDS < 15
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_SECONDS", 1)
    app = make_app()
    path = hotline(app).db.engine.url.database
    assert path
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        twilio = TwilioDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
        reply = reply_of(twilio.post("/twilio/sms", sms(STRANGER, "is anyone there")))
        assert reply is not None
        assert "911" in reply
        voice = twilio.post(
            "/twilio/voice",
            {"CallSid": "CA" + "2" * 32, "From": STRANGER, "To": "+13125550100"},
        )
        validate_answer(voice)
        assert b"<Record" in voice.data
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert stored(app) == NOTHING


def test_a_lock_held_on_postgresql_times_out_below_twilios_limit(
    make_app: Callable[..., Flask], postgresql_url: str
) -> None:
    """A migration (or anything) holds a table lock: the webhook gives up waiting after
    LOCK_TIMEOUT and answers with its fallback instead of hanging until Twilio gives up."""
    import psycopg
    from sqlalchemy.engine import make_url

    app = make_app(postgresql_url)
    url = make_url(postgresql_url)
    holding, done = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname=url.database
        ) as conn:
            conn.execute("LOCK TABLE webhook_receipts IN ACCESS EXCLUSIVE MODE")
            holding.set()
            done.wait(30)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert holding.wait(10)
        twilio = TwilioDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
        reply = reply_of(twilio.post("/twilio/sms", sms(STRANGER, "is anyone there")))
        assert reply is not None
        assert "could not take your message" in reply
    finally:
        done.set()
        holder.join(10)
    assert stored(app) == NOTHING
