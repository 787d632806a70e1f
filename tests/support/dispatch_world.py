"""A dispatcher world for tests: the app with the sample directory, the recording fakes and a
manual clock, and helpers to run what the worker and beat do."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select

from dispatcher import tasks
from hotline.core.clock import ManualClock
from hotline.core.tips import create_tip
from hotline.directory import import_directory, sample_directory
from hotline.email.fake import FakeEmail
from hotline.models import (
    Alert,
    Channel,
    Contact,
    District,
    LegKind,
    Notification,
    NotificationLeg,
    PhoneNumber,
    School,
    TipEvent,
    TipLevel,
)
from hotline.services import Hotline, hotline
from hotline.telephony.fake import FakeTelephony

CHICAGO = ZoneInfo("America/Chicago")
# A school day: Tuesday 2026-03-10, 10:00 in Chicago.
SCHOOL_HOURS = datetime(2026, 3, 10, 10, 0, tzinfo=CHICAGO).astimezone(UTC)
# Saturday night.
SATURDAY_NIGHT = datetime(2026, 3, 14, 23, 0, tzinfo=CHICAGO).astimezone(UTC)
# Friday evening, after hours.
FRIDAY_EVENING = datetime(2026, 3, 13, 18, 30, tzinfo=CHICAGO).astimezone(UTC)


class World:
    def __init__(
        self, app: Flask, clock: ManualClock, phone: FakeTelephony, mail: FakeEmail
    ) -> None:
        self.app, self.clock, self.phone, self.mail = app, clock, phone, mail
        self.services: Hotline = hotline(app)

    def tip(
        self,
        school_code: str | None = "1101",
        level: TipLevel = TipLevel.CRITICAL,
        tip_type: str | None = "weapon",
        **changes: object,
    ) -> int:
        with self.app.app_context(), self.services.db.session() as s:
            school = s.scalar(select(School).where(School.code == school_code))
            tip = create_tip(
                s,
                self.services.keyring,
                channel=Channel.VOICE,
                level=level,
                tip_type=tip_type,
                received_at=self.clock.now(),
                school=school,
            ).tip
            for name, value in changes.items():
                setattr(tip, name, value)
            return tip.id

    def run(self) -> tasks.SweepReport:
        """One round of what the worker and beat do."""
        with self.app.app_context():
            self.drain()
            report = tasks.sweep(self.services)
            self.drain()
            tasks.watchdog(self.services)
            self.drain()
            return report

    def drain(self) -> None:
        jobs = self.services.jobs
        jobs.drain(lambda name, args: tasks.run_job(self.services, name, args))  # type: ignore[attr-defined]

    def rows(self, tip_id: int, **where: object) -> list[Notification]:
        with self.services.db.sessionmaker() as s:
            q = select(Notification).where(Notification.tip_id == tip_id)
            for name, value in where.items():
                q = q.where(getattr(Notification, name) == value)
            return list(s.scalars(q.order_by(Notification.position, Notification.id)))

    def legs(self, tip_id: int) -> dict[LegKind, NotificationLeg]:
        with self.services.db.sessionmaker() as s:
            return {
                leg.kind: leg
                for leg in s.scalars(
                    select(NotificationLeg).where(NotificationLeg.tip_id == tip_id)
                )
            }

    def events(self, tip_id: int) -> list[str]:
        with self.services.db.sessionmaker() as s:
            return list(
                s.scalars(
                    select(TipEvent.kind).where(TipEvent.tip_id == tip_id).order_by(TipEvent.id)
                )
            )

    def alerts(self) -> list[str]:
        with self.services.db.sessionmaker() as s:
            return list(s.scalars(select(Alert.kind).order_by(Alert.id)))

    def contact(self, name_part: str) -> Contact:
        with self.services.db.sessionmaker() as s:
            return s.scalars(select(Contact).where(Contact.name.contains(name_part))).one()

    def number_of(self, contact_id: int | None) -> str:
        with self.services.db.sessionmaker() as s:
            c = s.get_one(Contact, contact_id)
            return s.get_one(PhoneNumber, c.phone_number_id).e164

    def set_district(self, code: str = "lakeview", **values: object) -> None:
        with self.services.db.session() as s:
            d = s.scalars(select(District).where(District.code == code)).one()
            for name, value in values.items():
                setattr(d, name, value)


@pytest.fixture
def world(make_app: Callable[..., Flask], clock: ManualClock) -> World:
    phone, mail = FakeTelephony(), FakeEmail()
    clock.set(SCHOOL_HOURS)
    app = make_app(telephony=phone, email=mail)
    assert import_directory(hotline(app).db, clock, sample_directory()).ok
    return World(app, clock, phone, mail)
