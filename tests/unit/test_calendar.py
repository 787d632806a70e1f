"""Business calendars and notification deadlines: explicit aware datetimes, never the wall clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.calendar import (
    DEADLINES,
    BusinessCalendar,
    NoBusinessTimeError,
    notify_deadline,
    parse_weekly_hours,
)
from hotline.models import District, DistrictBreak, TipLevel
from tests.support.calendars import (
    ALL_DAY_EVERY_DAY,
    CHICAGO,
    DENVER,
    FOOTHILLS,
    LAKEVIEW,
    PROPERTY_CALENDARS,
    WEEKDAYS_7_TO_5,
    calendar,
    local,
    utc,
)

# Weekends and the edges of the day ------------------------------------------------------------


def test_friday_evening_rolls_to_monday() -> None:
    friday_evening = local(CHICAGO, 2026, 3, 13, 18, 0)
    assert notify_deadline("standard", friday_evening, LAKEVIEW) == local(CHICAGO, 2026, 3, 16, 8)
    assert notify_deadline("other", friday_evening, LAKEVIEW) == local(CHICAGO, 2026, 3, 16, 11)

    # Friday 16:30 with hours 07:00-17:00: half an hour on Friday, the rest on Monday.
    friday_1630 = local(CHICAGO, 2026, 3, 13, 16, 30)
    assert notify_deadline("standard", friday_1630, LAKEVIEW) == local(CHICAGO, 2026, 3, 16, 7, 30)
    assert notify_deadline("other", friday_1630, LAKEVIEW) == local(CHICAGO, 2026, 3, 16, 10, 30)

    saturday = local(CHICAGO, 2026, 3, 14, 12)
    assert notify_deadline("standard", saturday, LAKEVIEW) == local(CHICAGO, 2026, 3, 16, 8)
    assert LAKEVIEW.next_business_time(saturday) == local(CHICAGO, 2026, 3, 16, 7)
    # Results are UTC.
    assert notify_deadline("standard", saturday, LAKEVIEW).tzinfo is UTC


def test_interval_edges() -> None:
    opening = local(CHICAGO, 2026, 3, 10, 7)
    closing = local(CHICAGO, 2026, 3, 10, 17)
    assert LAKEVIEW.is_business_time(opening)
    assert not LAKEVIEW.is_business_time(opening - timedelta(microseconds=1))
    assert LAKEVIEW.is_business_time(closing - timedelta(microseconds=1))
    assert not LAKEVIEW.is_business_time(closing)  # intervals are [opening, closing)
    assert LAKEVIEW.next_business_time(opening) == opening
    assert LAKEVIEW.next_business_time(closing) == local(CHICAGO, 2026, 3, 11, 7)
    # A deadline that uses up the day's last hour falls at closing time, not the next morning.
    assert (
        LAKEVIEW.add_business_time(local(CHICAGO, 2026, 3, 10, 16), timedelta(hours=1)) == closing
    )
    assert LAKEVIEW.add_business_time(closing, timedelta(0)) == closing
    assert LAKEVIEW.business_time_between(opening, closing) == timedelta(hours=10)
    assert LAKEVIEW.business_time_between(closing, opening) == -timedelta(hours=10)
    assert LAKEVIEW.business_time_between(opening, opening) == timedelta(0)


def test_split_and_touching_hours() -> None:
    cal = calendar(hours={0: [(time(12), time(17)), (time(7), time(12))], 2: [(time(9), time(10))]})
    monday = local(CHICAGO, 2026, 3, 9, 11, 30)
    # 07:00-12:00 and 12:00-17:00 touch: noon is business time, no gap at noon.
    assert cal.is_business_time(local(CHICAGO, 2026, 3, 9, 12))
    assert cal.add_business_time(monday, timedelta(hours=1)) == local(CHICAGO, 2026, 3, 9, 12, 30)
    # Monday 16:30 + 4h: 30 min Monday, 1 h Wednesday, then the next Monday.
    assert cal.add_business_time(local(CHICAGO, 2026, 3, 9, 16, 30), timedelta(hours=4)) == local(
        CHICAGO, 2026, 3, 16, 9, 30
    )


# Holidays -------------------------------------------------------------------------------------


def test_casimir_pulaski_day_is_a_holiday_in_illinois_not_colorado() -> None:
    # 2026-03-02 is the first Monday of March: Casimir Pulaski Day in Illinois only.
    pulaski = date(2026, 3, 2)
    illinois = calendar("America/Chicago", "US-IL")
    colorado_rules = calendar("America/Chicago", "US-CO")  # same zone: only the holidays differ
    assert illinois.is_holiday(pulaski) == "Casimir Pulaski Day"
    assert colorado_rules.is_holiday(pulaski) is None
    assert not illinois.is_business_day(pulaski)
    assert colorado_rules.is_business_day(pulaski)

    friday = local(CHICAGO, 2026, 2, 27, 16, 30)
    assert notify_deadline("standard", friday, illinois) == local(CHICAGO, 2026, 3, 3, 7, 30)
    assert notify_deadline("standard", friday, colorado_rules) == local(CHICAGO, 2026, 3, 2, 7, 30)
    assert notify_deadline("other", friday, illinois) == local(CHICAGO, 2026, 3, 3, 10, 30)

    # The sample districts: Lakeview (Chicago, US-IL) waits for Tuesday, Foothills (Denver,
    # US-CO) works on Monday.
    assert notify_deadline("standard", friday, LAKEVIEW) == local(CHICAGO, 2026, 3, 3, 7, 30)
    friday_denver = local(DENVER, 2026, 2, 27, 16, 30)
    assert notify_deadline("standard", friday_denver, FOOTHILLS) == local(DENVER, 2026, 3, 2, 7, 30)


def test_labor_day_is_a_holiday_everywhere() -> None:
    labor_day = date(2026, 9, 7)
    for cal, zone in ((LAKEVIEW, CHICAGO), (FOOTHILLS, DENVER), (calendar(region="US"), CHICAGO)):
        assert cal.is_holiday(labor_day) == "Labor Day"
        friday = local(zone, 2026, 9, 4, 16, 30)
        assert notify_deadline("standard", friday, cal) == local(zone, 2026, 9, 8, 7, 30)
        assert notify_deadline("other", friday, cal) == local(zone, 2026, 9, 8, 10, 30)


def test_region_spelling_is_canonicalised() -> None:
    assert calendar(region="us-il").holiday_region == "US-IL"
    assert calendar(region=" US ").holiday_region == "US"


# Breaks ---------------------------------------------------------------------------------------


def test_winter_break() -> None:
    cal = calendar(breaks=[(date(2026, 12, 21), date(2027, 1, 2), "Winter break")])
    assert cal.on_break(date(2026, 12, 21)) == "Winter break"
    assert cal.on_break(date(2027, 1, 2)) == "Winter break"  # inclusive
    assert cal.on_break(date(2026, 12, 20)) is None
    assert cal.on_break(date(2027, 1, 3)) is None
    assert not cal.is_business_day(date(2026, 12, 22))
    assert cal.is_holiday(date(2027, 1, 1)) == "New Year's Day"

    friday = local(CHICAGO, 2026, 12, 18, 16, 30)
    assert notify_deadline("standard", friday, cal) == local(CHICAGO, 2027, 1, 4, 7, 30)
    assert notify_deadline("other", friday, cal) == local(CHICAGO, 2027, 1, 4, 10, 30)
    during = local(CHICAGO, 2026, 12, 23, 10)
    assert not cal.is_business_time(during)
    assert cal.next_business_time(during) == local(CHICAGO, 2027, 1, 4, 7)
    assert cal.business_time_between(friday, local(CHICAGO, 2027, 1, 4, 8)) == timedelta(
        hours=1, minutes=30
    )


def test_summer_recess() -> None:
    cal = calendar(
        breaks=[
            (date(2026, 6, 13), date(2026, 8, 16), "Summer recess"),
            (date(2026, 12, 21), date(2027, 1, 2), "Winter break"),
        ]
    )
    friday = local(CHICAGO, 2026, 6, 12, 16)
    # One hour on Friday, three on the first Monday after the recess.
    assert notify_deadline("other", friday, cal) == local(CHICAGO, 2026, 8, 17, 10)
    assert cal.business_time_between(friday, local(CHICAGO, 2026, 8, 17, 10)) == timedelta(hours=4)
    assert cal.on_break(date(2026, 7, 15)) == "Summer recess"
    assert not cal.school_in_session(local(CHICAGO, 2026, 7, 15, 10))


def test_no_business_time_for_more_than_400_days_is_an_error() -> None:
    cal = calendar(breaks=[(date(2026, 1, 1), date(2027, 6, 30), "closed")])
    with pytest.raises(NoBusinessTimeError, match="no business time within 400 days"):
        cal.next_business_time(local(CHICAGO, 2026, 1, 5, 9))
    with pytest.raises(NoBusinessTimeError):
        notify_deadline("standard", local(CHICAGO, 2026, 1, 5, 9), cal)
    # Counting business time over a closed stretch is not a search: it is zero.
    assert cal.business_time_between(
        local(CHICAGO, 2026, 1, 1), local(CHICAGO, 2027, 6, 1)
    ) == timedelta(0)
    # Critical does not need the calendar.
    t = local(CHICAGO, 2026, 1, 5, 9)
    assert notify_deadline("critical", t, cal) == t + timedelta(minutes=20)


# Daylight saving time (US 2026: March 8 and November 1, at 02:00) ---------------------------


def test_weekday_hours_across_both_dst_changes() -> None:
    # Friday 16:30 CST (UTC-6) -> Monday 07:30 CDT (UTC-5).
    friday = local(CHICAGO, 2026, 3, 6, 16, 30)
    assert friday == utc(2026, 3, 6, 22, 30)
    assert notify_deadline("standard", friday, LAKEVIEW) == utc(2026, 3, 9, 12, 30)
    assert notify_deadline("other", friday, LAKEVIEW) == utc(2026, 3, 9, 15, 30)
    # Friday 16:30 CDT -> Monday 07:30 CST.
    friday = local(CHICAGO, 2026, 10, 30, 16, 30)
    assert friday == utc(2026, 10, 30, 21, 30)
    assert notify_deadline("standard", friday, LAKEVIEW) == utc(2026, 11, 2, 13, 30)
    assert LAKEVIEW.business_time_between(friday, utc(2026, 11, 2, 13, 30)) == timedelta(hours=1)


def test_24_hour_district_measures_real_elapsed_time() -> None:
    cal = calendar(hours=ALL_DAY_EVERY_DAY, region="US")
    spring, fall = date(2026, 3, 8), date(2026, 11, 1)
    assert cal.business_intervals(spring) == [(utc(2026, 3, 8, 6), utc(2026, 3, 9, 5))]  # 23 h
    assert cal.business_intervals(fall) == [(utc(2026, 11, 1, 5), utc(2026, 11, 2, 6))]  # 25 h
    assert cal.business_time_between(
        local(CHICAGO, 2026, 3, 8), local(CHICAGO, 2026, 3, 9)
    ) == timedelta(hours=23)
    assert cal.business_time_between(
        local(CHICAGO, 2026, 11, 1), local(CHICAGO, 2026, 11, 2)
    ) == timedelta(hours=25)
    # Midnight between two open days is business time: the intervals touch.
    assert cal.is_business_time(local(CHICAGO, 2026, 3, 10))

    # 01:30 CST, just before the clocks jump to 03:00: an hour later the clock reads 03:30 CDT.
    before_spring = local(CHICAGO, 2026, 3, 8, 1, 30)
    assert notify_deadline("standard", before_spring, cal) == utc(2026, 3, 8, 8, 30)
    assert notify_deadline("standard", before_spring, cal) == local(CHICAGO, 2026, 3, 8, 3, 30)
    # 01:30 CDT, just before the clocks fall back: an hour later the clock reads 01:30 CST.
    before_fall = local(CHICAGO, 2026, 11, 1, 1, 30, fold=0)
    assert before_fall == utc(2026, 11, 1, 6, 30)
    assert notify_deadline("standard", before_fall, cal) == utc(2026, 11, 1, 7, 30)
    assert notify_deadline("standard", before_fall, cal) == local(
        CHICAGO, 2026, 11, 1, 1, 30, fold=1
    )
    # Four hours from 00:30 CDT end at 03:30 CST.
    assert notify_deadline("other", local(CHICAGO, 2026, 11, 1, 0, 30), cal) == local(
        CHICAGO, 2026, 11, 1, 3, 30
    )


def test_00_00_to_23_59_district_across_dst() -> None:
    cal = calendar(hours={d: [(time(0), time(23, 59))] for d in range(7)}, region="US")
    assert cal.business_time_between(
        local(CHICAGO, 2026, 3, 8), local(CHICAGO, 2026, 3, 9)
    ) == timedelta(hours=22, minutes=59)
    assert cal.business_time_between(
        local(CHICAGO, 2026, 11, 1), local(CHICAGO, 2026, 11, 2)
    ) == timedelta(hours=24, minutes=59)
    assert notify_deadline("standard", local(CHICAGO, 2026, 3, 8, 1, 30), cal) == utc(
        2026, 3, 8, 8, 30
    )
    # The minute from 23:59 to midnight is closed.
    late = local(CHICAGO, 2026, 3, 9, 23, 30)
    assert notify_deadline("standard", late, cal) == local(CHICAGO, 2026, 3, 10, 0, 31)


def test_opening_in_the_spring_gap_and_closing_in_the_fall_back_hour() -> None:
    # Sunday hours 02:30-06:00: on March 8, 02:30 never happens; the office opens when the clock
    # jumps to 03:00 CDT, so the day has 3 hours.
    gap = calendar(hours={6: [(time(2, 30), time(6))]}, region="US")
    assert gap.business_intervals(date(2026, 3, 8)) == [(utc(2026, 3, 8, 8), utc(2026, 3, 8, 11))]
    assert gap.next_business_time(local(CHICAGO, 2026, 3, 7, 12)) == local(CHICAGO, 2026, 3, 8, 3)
    # Sunday hours 01:00-01:30: on November 1 the clock reads 01:00..01:30 twice; open from the
    # first 01:00 (CDT) to the last 01:30 (CST): 1 h 30 of real time.
    fold = calendar(hours={6: [(time(1), time(1, 30))]}, region="US")
    assert fold.business_intervals(date(2026, 11, 1)) == [
        (utc(2026, 11, 1, 6), utc(2026, 11, 1, 7, 30))
    ]
    # An interval spanning the jump (01:00-05:00 on March 8) is 3 real hours.
    span = calendar(hours={6: [(time(1), time(5))]}, region="US")
    start = local(CHICAGO, 2026, 3, 8, 1, 30)
    assert span.add_business_time(start, timedelta(hours=2, minutes=30)) == local(
        CHICAGO, 2026, 3, 8, 5
    )
    assert span.add_business_time(start, timedelta(hours=4)) == local(CHICAGO, 2026, 3, 15, 2, 30)


# Time zones -----------------------------------------------------------------------------------


def test_same_utc_arrival_in_two_time_zones() -> None:
    arrival = utc(2026, 3, 10, 22, 30)  # Tuesday: 17:30 CDT in Chicago, 16:30 MDT in Denver
    assert not LAKEVIEW.is_business_time(arrival)
    assert FOOTHILLS.is_business_time(arrival)
    assert notify_deadline("standard", arrival, LAKEVIEW) == utc(2026, 3, 11, 13)  # 08:00 CDT
    assert notify_deadline("standard", arrival, FOOTHILLS) == utc(2026, 3, 11, 13, 30)  # 07:30 MDT
    assert notify_deadline("other", arrival, LAKEVIEW) == utc(2026, 3, 11, 16)  # 11:00 CDT
    assert notify_deadline("other", arrival, FOOTHILLS) == utc(2026, 3, 11, 16, 30)  # 10:30 MDT
    assert LAKEVIEW.next_business_time(arrival) == utc(2026, 3, 11, 12)
    assert FOOTHILLS.next_business_time(arrival) == arrival


# Critical -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arrival",
    [
        local(CHICAGO, 2026, 1, 1, 3, 0),  # 3 a.m. on New Year's Day
        local(CHICAGO, 2026, 3, 2, 3, 0),  # 3 a.m. on Casimir Pulaski Day
        local(CHICAGO, 2026, 3, 8, 1, 50),  # across the spring-forward jump
        local(CHICAGO, 2026, 11, 1, 1, 50, fold=0),  # across the fall-back hour
        local(CHICAGO, 2026, 3, 10, 10, 0),  # a school morning
    ],
)
def test_critical_is_arrival_plus_20_minutes_at_any_hour(arrival: datetime) -> None:
    for cal in (LAKEVIEW, FOOTHILLS):
        deadline = notify_deadline("critical", arrival, cal)
        # Real elapsed time: on a DST day, adding to the local wall clock would be wrong.
        assert deadline == arrival + timedelta(minutes=20)
        assert deadline - arrival == timedelta(minutes=20)
        assert deadline.tzinfo is UTC
        assert notify_deadline(TipLevel.CRITICAL, arrival, cal) == deadline


def test_deadline_table_and_levels() -> None:
    assert DEADLINES == {
        "critical": timedelta(minutes=20),
        "standard": timedelta(hours=1),
        "other": timedelta(hours=4),
    }
    t = local(CHICAGO, 2026, 3, 10, 9)
    assert notify_deadline(TipLevel.STANDARD, t, LAKEVIEW) == local(CHICAGO, 2026, 3, 10, 10)
    assert notify_deadline("Other", t, LAKEVIEW) == local(CHICAGO, 2026, 3, 10, 13)
    with pytest.raises(ValueError, match="unknown tip level 'urgent'"):
        notify_deadline("urgent", t, LAKEVIEW)


# School sessions ------------------------------------------------------------------------------


def test_school_in_session() -> None:
    cal = calendar(breaks=[(date(2026, 12, 21), date(2027, 1, 2), "Winter break")])
    assert cal.school_in_session(local(CHICAGO, 2026, 3, 10, 10))  # Tuesday morning
    assert cal.school_in_session(local(CHICAGO, 2026, 3, 10, 7, 30))  # the bell
    assert not cal.school_in_session(local(CHICAGO, 2026, 3, 10, 7, 29))
    assert not cal.school_in_session(local(CHICAGO, 2026, 3, 10, 15, 30))  # end excluded
    assert not cal.school_in_session(local(CHICAGO, 2026, 3, 10, 19))  # evening
    assert not cal.school_in_session(local(CHICAGO, 2026, 3, 10, 3))  # night
    assert not cal.school_in_session(local(CHICAGO, 2026, 3, 14, 10))  # Saturday
    assert not cal.school_in_session(local(CHICAGO, 2026, 3, 2, 10))  # Pulaski Day (IL)
    assert FOOTHILLS.school_in_session(local(DENVER, 2026, 3, 2, 10))  # not in Colorado
    assert not cal.school_in_session(local(CHICAGO, 2026, 12, 22, 10))  # winter break
    assert not cal.school_in_session(local(CHICAGO, 2026, 9, 7, 10))  # Labor Day

    assert cal.next_school_session_change(local(CHICAGO, 2026, 3, 10, 10)) == local(
        CHICAGO, 2026, 3, 10, 15, 30
    )
    assert cal.next_school_session_change(local(CHICAGO, 2026, 2, 27, 16)) == local(
        CHICAGO, 2026, 3, 3, 7, 30
    )  # Friday afternoon -> Tuesday (Monday is Pulaski Day)
    assert cal.next_school_session_change(local(CHICAGO, 2026, 12, 18, 16)) == local(
        CHICAGO, 2027, 1, 4, 7, 30
    )


# Validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "America/Springfield"}, "unknown time zone 'America/Springfield'"),
        ({"holiday_region": "XX"}, "no calendar for country 'XX'"),
        ({"holiday_region": "US-ZZ"}, "no subdivision 'ZZ' for US"),
        ({"weekly_hours": {}}, "no business hours on any day"),
        ({"weekly_hours": {0: []}}, "no business hours on any day"),
        ({"weekly_hours": {0: [(time(17), time(7))]}}, "mon: 17:00-07:00 ends before it starts"),
        ({"weekly_hours": {1: [(time(9), time(9))]}}, "tue: 09:00-09:00 ends before it starts"),
        (
            {"weekly_hours": {2: [(time(7), time(12)), (time(11), time(17))]}},
            "wed: 07:00-12:00 and 11:00-17:00 overlap",
        ),
        (
            {"weekly_hours": {3: [(time(7), time(0)), (time(8), time(9))]}},
            "thu: 07:00-24:00 and 08:00-09:00 overlap",
        ),
        ({"weekly_hours": {7: [(time(7), time(17))]}}, "weekday 7 is not 0"),
        (
            {"breaks": [(date(2026, 12, 21), date(2026, 12, 20), "Winter")]},
            "ends on 2026-12-20 before it starts on 2026-12-21",
        ),
        ({"school_day": (time(15, 30), time(7, 30))}, "school day 15:30-07:30"),
    ],
)
def test_invalid_calendars_are_refused(kwargs: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {
        "timezone": "America/Chicago",
        "weekly_hours": WEEKDAYS_7_TO_5,
        "holiday_region": "US-IL",
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(**values)


def test_naive_times_and_negative_durations_are_refused() -> None:
    naive = datetime(2026, 3, 10, 10)  # noqa: DTZ001
    for call in (
        lambda: LAKEVIEW.is_business_time(naive),
        lambda: LAKEVIEW.next_business_time(naive),
        lambda: LAKEVIEW.add_business_time(naive, timedelta(hours=1)),
        lambda: LAKEVIEW.business_time_between(naive, naive),
        lambda: LAKEVIEW.school_in_session(naive),
        lambda: notify_deadline("critical", naive, LAKEVIEW),
    ):
        with pytest.raises(ValueError, match="naive datetime"):
            call()
    with pytest.raises(ValueError, match="negative"):
        LAKEVIEW.add_business_time(local(CHICAGO, 2026, 3, 10, 10), timedelta(seconds=-1))


def test_parse_weekly_hours() -> None:
    assert parse_weekly_hours(
        {"mon": [["07:00", "17:00"]], "Sun": [], "sat": [["22:00", "24:00"]]}
    ) == {
        0: ((time(7), time(17)),),
        6: (),
        5: ((time(22), time(0)),),
    }
    assert parse_weekly_hours({"fri": [["8:15", "12:00:30"], ["13:00", "00:00"]]}) == {
        4: ((time(8, 15), time(12, 0, 30)), (time(13), time(0))),
    }


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ([["07:00", "17:00"]], "are not an object"),
        ({"monday": [["07:00", "17:00"]]}, "unknown day 'monday'"),
        ({"mon": "07:00-17:00"}, "is not a list"),
        ({"mon": [["07:00"]]}, "is not a pair"),
        ({"mon": [["7am", "17:00"]]}, "'7am' is not a time"),
        ({"mon": [["07:00", "25:00"]]}, "'25:00' is not a time of day"),
        ({"mon": [["24:00", "17:00"]]}, "'24:00' is not a time of day"),
        ({"tue": [["17:00", "07:00"]]}, "tue: 17:00-07:00 ends before it starts"),
        ({"wed": [["07:00", "12:00"], ["11:59", "17:00"]]}, "overlap"),
    ],
)
def test_bad_district_hours_are_refused(hours: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_weekly_hours(hours)
    district = District(
        id=7,
        code="north",
        timezone="America/Chicago",
        holiday_region="US-IL",
        business_hours=hours,
        school_day_start=time(7, 30),
        school_day_end=time(15, 30),
    )
    with pytest.raises(ValueError, match=r"^district 'north': business hours"):
        BusinessCalendar.from_district(district)


def test_from_district_rows() -> None:
    district = District(
        id=7,
        code="north",
        timezone="America/Denver",
        holiday_region="us-co",
        business_hours={"mon": [["08:00", "16:00"]], "tue": [["08:00", "16:00"]]},
        school_day_start=time(8),
        school_day_end=time(15),
    )
    winter = DistrictBreak(
        id=1,
        district_id=7,
        name="Winter break",
        starts_on=date(2026, 12, 21),
        ends_on=date(2027, 1, 2),
    )
    cal = BusinessCalendar.from_district(district, [winter])
    assert cal.timezone == "America/Denver"
    assert cal.holiday_region == "US-CO"
    assert cal.on_break(date(2026, 12, 24)) == "Winter break"
    assert cal.school_day == (time(8), time(15))
    assert not cal.is_business_day(date(2026, 3, 11))  # a Wednesday: no hours
    assert cal.next_business_time(local(DENVER, 2026, 3, 10, 16)) == local(DENVER, 2026, 3, 16, 8)

    other = DistrictBreak(
        id=2, district_id=8, name="Spring", starts_on=date(2026, 3, 23), ends_on=date(2026, 3, 27)
    )
    with pytest.raises(ValueError, match="break #2 'Spring' belongs to another district"):
        BusinessCalendar.from_district(district, [other])
    district.timezone = "Mars/Olympus_Mons"
    with pytest.raises(ValueError, match=r"^district 'north': unknown time zone"):
        BusinessCalendar.from_district(district)


def test_calendars_compare_and_hash() -> None:
    a = calendar(breaks=[(date(2026, 12, 21), date(2027, 1, 2), "Winter break")])
    b = calendar(breaks=[(date(2026, 12, 21), date(2027, 1, 2), "Winter break")])
    assert a == b
    assert hash(a) == hash(b)
    assert a != LAKEVIEW
    # Equality is on the checked hours, whatever sequence type they came in.
    listed = BusinessCalendar("America/Chicago", {0: [(time(7), time(17))]}, "US-IL")
    tupled = BusinessCalendar("America/Chicago", {0: ((time(7), time(17)),), 6: ()}, "us-il")
    assert listed == tupled
    assert hash(listed) == hash(tupled)


def test_unsaved_district_uses_the_model_defaults() -> None:
    district = District(id=1, code="new", timezone="America/Chicago", holiday_region="US-IL")
    cal = BusinessCalendar.from_district(district)
    assert cal == LAKEVIEW
    assert cal.school_day == (time(7, 30), time(15, 30))


# Properties -----------------------------------------------------------------------------------


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    cal=st.sampled_from(PROPERTY_CALENDARS),
    t=st.datetimes(
        min_value=datetime(2026, 1, 1),  # noqa: DTZ001 (hypothesis wants naive bounds)
        max_value=datetime(2027, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    duration=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(hours=60)),
)
def test_add_business_time_is_consistent(
    cal: BusinessCalendar, t: datetime, duration: timedelta
) -> None:
    result = cal.add_business_time(t, duration)
    assert result > t
    assert cal.business_time_between(t, result) == duration
    # The result closes a stretch of business time: the instant before it is business time
    # (the result itself is business time, or the end of an interval).
    assert cal.is_business_time(result - timedelta(microseconds=1))

    opening = cal.next_business_time(t)
    assert opening >= t
    assert cal.is_business_time(opening)
    assert cal.business_time_between(t, opening) == timedelta(0)
    assert cal.add_business_time(opening, duration) == result

    middle = t + (result - t) / 2
    assert (
        cal.business_time_between(t, middle) + cal.business_time_between(middle, result) == duration
    )


# Database and CLI -----------------------------------------------------------------------------
