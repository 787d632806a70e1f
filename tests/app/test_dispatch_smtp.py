"""A Critical tip's e-mails leave through the real SMTP adapter and reach a real SMTP server."""

from __future__ import annotations

import email
from collections.abc import Callable, Iterator

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import select

from dispatcher import tasks
from hotline.core.clock import ManualClock
from hotline.core.tips import create_tip
from hotline.directory import import_directory, sample_directory
from hotline.email.smtp import SmtpEmailSender
from hotline.models import (
    ActorType,
    Channel,
    District,
    MessageDirection,
    School,
    TipLevel,
    TipMessage,
)
from hotline.services import hotline
from tests.support.celery_support import MailSink
from tests.support.dispatch_world import SCHOOL_HOURS
from tests.support.services import free_port


@pytest.fixture
def inbox() -> Iterator[tuple[MailSink, int]]:
    handler, port = MailSink(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.mark.parametrize("opted_in", [False, True], ids=["default", "district-opted-in"])
def test_critical_tip_emails_arrive_with_the_reporters_words_only_if_opted_in(
    opted_in: bool, make_app: Callable[..., Flask], clock: ManualClock, inbox: tuple[MailSink, int]
) -> None:
    handler, port = inbox
    clock.set(SCHOOL_HOURS)
    sender = SmtpEmailSender(
        f"smtp://127.0.0.1:{port}?starttls=false", sender="hotline@hotline.example.org"
    )
    app = make_app(email=sender)
    services = hotline(app)
    assert import_directory(services.db, clock, sample_directory()).ok
    with app.app_context(), services.db.session() as s:
        school = s.scalars(select(School).where(School.code == "1101")).one()
        s.get_one(District, school.district_id).email_summary = opted_in
        tip = create_tip(
            s,
            services.keyring,
            channel=Channel.SMS,
            level=TipLevel.CRITICAL,
            tip_type="weapon",
            received_at=clock.now(),
            school=school,
        ).tip
        s.add(
            TipMessage(
                tip_id=tip.id,
                direction=MessageDirection.FROM_REPORTER,
                body="my friend Jake says he will bring a gun tomorrow",
                actor_type=ActorType.REPORTER,
                created_at=clock.now(),
            )
        )
        report = tip.report_number
    with app.app_context():
        services.jobs.drain(lambda n, a: tasks.run_job(services, n, a))  # type: ignore[attr-defined]
        tasks.sweep(services)
    recipients = sorted(r for rcpts, _ in handler.envelopes for r in rcpts)
    assert recipients == [
        "a.brooks@lakeview.example.org",
        "d.kim@lakeview.example.org",
        "l.ortega@lakeview.example.org",
    ]
    message = email.message_from_bytes(handler.envelopes[0][1])
    text = message.get_payload(0).get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert report in message["Subject"]
    assert "Lakeview High School" in message["Subject"]
    assert "CRITICAL" in message["Subject"]
    assert f"/portal/tips/{report}" in text
    assert ("bring a gun" in text) is opted_in
