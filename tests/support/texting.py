"""Texting the hotline in tests: signed SMS webhooks, the TwiML reply's text, the numbers."""

from __future__ import annotations

import secrets
import sqlite3
import xml.etree.ElementTree as ET

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from hotline.models import (
    Channel,
    MessageDirection,
    PhoneNumber,
    Tip,
    TipEvent,
    TipMessage,
)
from hotline.services import hotline
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.dispatch_world import World
from tests.support.twilio_driver import TwilioDriver

HOTLINE = "+13125550100"


PRINCIPAL = "+13125550111"  # Angela Brooks, Lakeview High School (1101)


PSAP_LINE = "+13125550190"  # Lakeview County Emergency Communications, district-wide


STRANGER = "+13125550199"  # in no directory: a reporter


STRANGER_DIGITS = ("5550199", "555-0199", "555 0199")


def sms(sender: str, body: str, **extra: str) -> dict[str, str]:
    """What Twilio posts for an incoming text (location fields included: they are dropped)."""
    sid = "SM" + secrets.token_hex(16)
    return {
        "ToCountry": "US",
        "ToState": "IL",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "CHICAGO",
        "FromZip": "60601",
        "SmsSid": sid,
        "FromState": "IL",
        "SmsStatus": "received",
        "FromCity": "CHICAGO",
        "Body": body,
        "FromCountry": "US",
        "To": HOTLINE,
        "ToZip": "60601",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def driver(app: Flask) -> TwilioDriver:
    return TwilioDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)


def text(app: Flask, sender: str, body: str, **extra: str) -> TestResponse:
    return driver(app).post("/twilio/sms", sms(sender, body, **extra))


def reply_of(response: TestResponse) -> str | None:
    """The <Message> sent back, None for an empty MessagingResponse."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/xml")
    root = ET.fromstring(response.get_data(as_text=True))
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(messages) <= 1
    return None if not messages else (messages[0].text or "")


def session_of(app: Flask) -> Session:
    return hotline(app).db.sessionmaker()


def report_number(app: Flask, tip_id: int) -> str:
    with session_of(app) as s:
        return s.get_one(Tip, tip_id).report_number


def count(app: Flask, model: type[object]) -> int:
    with session_of(app) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def sms_tips(app: Flask) -> list[Tip]:
    with session_of(app) as s:
        return list(s.scalars(select(Tip).where(Tip.channel == Channel.SMS).order_by(Tip.id)))


def messages_of(app: Flask, tip_id: int) -> list[str]:
    with session_of(app) as s:
        return list(
            s.scalars(
                select(TipMessage.body)
                .where(
                    TipMessage.tip_id == tip_id,
                    TipMessage.direction == MessageDirection.FROM_REPORTER,
                )
                .order_by(TipMessage.id)
            )
        )


def database_text(app: Flask) -> str:
    """Every value in the database, as SQL text."""
    path = hotline(app).db.engine.url.database
    assert path
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


def phone_row(app: Flask, e164: str) -> PhoneNumber:
    with session_of(app) as s:
        return s.scalars(select(PhoneNumber).where(PhoneNumber.e164 == e164)).one()


def alerted(world: World, school_code: str = "1101") -> tuple[int, str]:
    """A Critical tip (Lakeview High School by default) whose first calls and texts went out."""
    tip_id = world.tip(school_code)
    world.run()
    return tip_id, report_number(world.app, tip_id)


def report_number_is_free(app: Flask, number: str) -> bool:
    with session_of(app) as s:
        return s.scalar(select(Tip.id).where(Tip.report_number == number)) is None


def world_events(app: Flask, tip_id: int) -> list[TipEvent]:
    with session_of(app) as s:
        return list(s.scalars(select(TipEvent).where(TipEvent.tip_id == tip_id)))
