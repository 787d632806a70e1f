"""Business calendars for the tests: districts, weekly hours and local times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from dispatcher.calendar import (
    BusinessCalendar,
)
from hotline.core.clock import ManualClock
from hotline.directory import import_directory, sample_directory
from hotline.models import District
from hotline.services import hotline

CHICAGO = ZoneInfo("America/Chicago")


DENVER = ZoneInfo("America/Denver")


WEEKDAYS_7_TO_5 = {day: [(time(7), time(17))] for day in range(5)}


ALL_DAY_EVERY_DAY = {day: [(time(0), time(0))] for day in range(7)}  # 00:00 to 24:00


def local(
    zone: ZoneInfo,
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    *,
    fold: int = 0,
) -> datetime:
    """The instant the clock in ``zone`` reads the given time (its second reading with
    ``fold=1``), as UTC: comparisons and arithmetic are then on real instants (PEP 495 makes a
    fall-back local time unequal to every instant in another zone)."""
    return datetime(year, month, day, hour, minute, tzinfo=zone, fold=fold).astimezone(UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def calendar(
    zone: str = "America/Chicago",
    region: str = "US-IL",
    hours: dict[int, list[tuple[time, time]]] | None = None,
    breaks: list[tuple[date, date, str]] | None = None,
) -> BusinessCalendar:
    return BusinessCalendar(
        timezone=zone,
        weekly_hours=WEEKDAYS_7_TO_5 if hours is None else hours,
        holiday_region=region,
        breaks=breaks or [],
        school_day=(time(7, 30), time(15, 30)),
    )


LAKEVIEW = calendar("America/Chicago", "US-IL")


FOOTHILLS = calendar("America/Denver", "US-CO")


PROPERTY_CALENDARS = [
    calendar(
        breaks=[
            (date(2026, 6, 13), date(2026, 8, 16), "Summer recess"),
            (date(2026, 12, 21), date(2027, 1, 2), "Winter break"),
        ]
    ),
    FOOTHILLS,
    calendar(hours=ALL_DAY_EVERY_DAY, region="US"),
    # Split, touching, past-midnight and DST-straddling Sunday hours.
    calendar(
        hours={
            0: [(time(7), time(12)), (time(12), time(17))],
            2: [(time(22), time(0))],
            3: [(time(0), time(2)), (time(9, 15), time(9, 45))],
            6: [(time(1), time(1, 30)), (time(2, 30), time(3, 30))],
        }
    ),
]


@pytest.fixture
def directory_app(make_app: Callable[..., Flask], clock: ManualClock) -> Flask:
    app = make_app()
    result = import_directory(hotline(app).db, clock, sample_directory())
    assert not result.problems, result.problems
    return app


def _district_id(app: Flask, code: str) -> int:
    from sqlalchemy import select

    with hotline(app).db.session() as session:
        district_id = session.scalars(select(District.id).where(District.code == code)).one()
    return district_id
