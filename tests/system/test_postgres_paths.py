"""The paths a caller, a texter and a contact take, on the real PostgreSQL as well as SQLite:
queries that SQLite accepts and PostgreSQL refuses must fail here, not in production."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select

from dispatcher import tasks
from hotline.core.clock import ManualClock
from hotline.core.confirming import VOICE_MENU_KEY
from hotline.directory import import_directory, sample_directory
from hotline.email.fake import FakeEmail
from hotline.models import LegKind, LegState, NotificationLeg, Tip, TipStatus
from hotline.services import hotline
from hotline.telephony.fake import FakeTelephony
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.dispatch_world import SCHOOL_HOURS
from tests.support.ivr_driver import VoiceDriver
from tests.support.twilio_driver import TwilioDriver


@pytest.fixture
def app(make_app: Callable[..., Flask], clock: ManualClock, database_url: str) -> Flask:
    clock.set(SCHOOL_HOURS)
    app = make_app(database_url, telephony=FakeTelephony(), email=FakeEmail())
    assert import_directory(hotline(app).db, clock, sample_directory()).ok
    return app


def run(app: Flask) -> None:
    services = hotline(app)
    with app.app_context():
        services.jobs.drain(lambda n, a: tasks.run_job(services, n, a))  # type: ignore[attr-defined]
        tasks.sweep(services)
        services.jobs.drain(lambda n, a: tasks.run_job(services, n, a))  # type: ignore[attr-defined]
        tasks.watchdog(services)


def legs(app: Flask) -> dict[LegKind, LegState]:
    with hotline(app).db.sessionmaker() as s:
        return {leg.kind: leg.state for leg in s.scalars(select(NotificationLeg))}


def test_report_alert_and_confirmations_by_call_back_and_text(app: Flask) -> None:
    voice = VoiceDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    call = voice.call(from_="+14155550123")  # a caller with a number (not withheld)
    for keys in ("1", "1", "1", "1101#", "1"):
        call.press(keys)
    call.record(duration=12)
    text = call.heard_text_since_last_action()
    report = re.sub(r"\D", "", re.search(r"report number is ([\d, ]+)", text).group(1))  # type: ignore[union-attr]
    call.silence()
    assert call.ended
    run(app)
    with hotline(app).db.sessionmaker() as s:
        tip = s.scalars(select(Tip)).one()
        assert tip.report_number == report
        assert tip.status is TipStatus.OPEN
    assert legs(app) == {LegKind.POC: LegState.OPEN, LegKind.PSAP: LegState.OPEN}

    # The principal calls back and confirms the POC leg with the report number.
    back = voice.call(from_="+13125550111")
    assert ", ".join(report) not in back.heard_text_since_last_action()
    for keys in ("1", VOICE_MENU_KEY, report + "#"):
        back.press(keys)
    assert "is recorded" in back.heard_text_since_last_action()
    # The PSAP desk texts "1 <report>".
    sms = TwilioDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)
    reply = sms.post(
        "/twilio/sms",
        {
            "MessageSid": "SM" + "1" * 32,
            "AccountSid": "AC" + "0" * 32,
            "From": "+13125550190",
            "To": "+13125550100",
            "Body": f"1 {report}",
            "NumMedia": "0",
        },
    )
    assert reply.status_code == 200
    assert report in reply.get_data(as_text=True)
    assert legs(app) == {LegKind.POC: LegState.CONFIRMED, LegKind.PSAP: LegState.CONFIRMED}

    # A reporter follows up by phone.
    follow = voice.call(from_="+14155550199")
    for keys in ("1", "2", report + "#"):
        follow.press(keys)
    pin = re.sub(r"\D", "", re.search(r"PIN is ([\d, ]+)", text).group(1))  # type: ignore[union-attr]
    follow.press(pin + "#")
    assert "no messages" in follow.heard_text_since_last_action()
