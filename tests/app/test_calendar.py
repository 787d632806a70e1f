"""Business calendars and notification deadlines: explicit aware datetimes, never the wall clock."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from flask import Flask

from dispatcher.calendar import (
    load_calendar,
    notify_deadline,
)
from hotline.services import hotline
from tests.support.calendars import CHICAGO, _district_id, local

# Weekends and the edges of the day ------------------------------------------------------------


# Holidays -------------------------------------------------------------------------------------


# Breaks ---------------------------------------------------------------------------------------


# Daylight saving time (US 2026: March 8 and November 1, at 02:00) ---------------------------


# Time zones -----------------------------------------------------------------------------------


# Critical -------------------------------------------------------------------------------------


# School sessions ------------------------------------------------------------------------------


# Validation -----------------------------------------------------------------------------------


# Properties -----------------------------------------------------------------------------------


# Database and CLI -----------------------------------------------------------------------------


def test_cli_breaks_and_show(directory_app: Flask) -> None:
    runner = directory_app.test_cli_runner()

    def run(*args: str) -> Any:
        return runner.invoke(args=["calendar", *args])

    result = run("add-break", "lakeview", "2026-12-21", "2027-01-02", "Winter break")
    assert result.exit_code == 0, result.output + result.stderr
    assert result.stdout == (
        "added break #1 'Winter break' (break, 2026-12-21 to 2027-01-02, 13 days) "
        "to district 'lakeview'\n"
    )
    result = run("add-break", "lakeview", "2026-06-13", "2026-08-16", "Summer recess", "--summer")
    assert result.exit_code == 0, result.stderr
    # The same dates in another district are fine.
    result = run("add-break", "foothills", "2026-12-24", "2027-01-01", "Holidays")
    assert result.exit_code == 0, result.stderr

    result = run("add-break", "lakeview", "2027-01-02", "2027-01-05", "Extra")
    assert result.exit_code == 1
    assert "2027-01-02 to 2027-01-05 overlaps #1 'Winter break'" in result.stderr
    assert "nothing was added" in result.stderr
    result = run("add-break", "lakeview", "2026-04-10", "2026-04-03", "Spring")
    assert result.exit_code == 1
    assert "END 2026-04-03 is before START 2026-04-10" in result.stderr
    result = run("add-break", "lakeview", "2026-4-3", "2026-04-10", "Spring")
    assert result.exit_code == 1
    assert "START '2026-4-3' is not a date in the form YYYY-MM-DD" in result.stderr
    result = run("add-break", "lakeview", "2026-02-30", "2026-03-02", "Spring")
    assert result.exit_code == 1
    assert "START '2026-02-30' is not a valid date" in result.stderr
    result = run("add-break", "lakeview", "2026-04-03", "2027-06-10", "Typo")
    assert result.exit_code == 1
    assert "longer than 366" in result.stderr
    result = run("add-break", "nowhere", "2026-04-03", "2026-04-10", "Spring")
    assert result.exit_code == 1
    assert "no district with code 'nowhere' (known: foothills, lakeview)" in result.stderr

    result = run("list-breaks")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "foothills: #3 'Holidays' (break, 2026-12-24 to 2027-01-01, 9 days)",
        "lakeview: #2 'Summer recess' (summer, 2026-06-13 to 2026-08-16, 65 days)",
        "lakeview: #1 'Winter break' (break, 2026-12-21 to 2027-01-02, 13 days)",
    ]
    result = run("list-breaks", "foothills")
    assert result.stdout.splitlines() == [
        "foothills: #3 'Holidays' (break, 2026-12-24 to 2027-01-01, 9 days)"
    ]

    with hotline(directory_app).db.session() as session:
        cal = load_calendar(session, _district_id(directory_app, "lakeview"))
    assert cal.timezone == "America/Chicago"
    assert cal.holiday_region == "US-IL"
    assert cal.on_break(date(2026, 7, 1)) == "Summer recess"
    assert notify_deadline("standard", local(CHICAGO, 2026, 12, 18, 16, 30), cal) == local(
        CHICAGO, 2027, 1, 4, 7, 30
    )

    # A local time (no offset) during the break.
    result = run("show", "lakeview", "--at", "2026-12-23T10:00")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Lakeview Unified School District (lakeview): America/Chicago, holidays US-IL",
        "  at:                 Wed 2026-12-23 10:00 CST (2026-12-23 16:00 UTC)",
        "  day:                on break: Winter break",
        "  business time:      no",
        "  school in session:  no (a Critical tip also alerts law enforcement)",
        "  next business time: Mon 2027-01-04 07:00 CST (2027-01-04 13:00 UTC)",
        "  critical deadline:  Wed 2026-12-23 10:20 CST (2026-12-23 16:20 UTC)",
        "  standard deadline:  Mon 2027-01-04 08:00 CST (2027-01-04 14:00 UTC)",
        "  other deadline:     Mon 2027-01-04 11:00 CST (2027-01-04 17:00 UTC)",
    ]
    # A UTC time on Casimir Pulaski Day, in Denver (no holiday there).
    result = run("show", "foothills", "--at", "2026-03-02T16:30Z")
    assert result.exit_code == 0, result.stderr
    assert "  at:                 Mon 2026-03-02 09:30 MST (2026-03-02 16:30 UTC)" in result.stdout
    assert "  day:                business day" in result.stdout
    assert "  school in session:  yes" in result.stdout
    result = run("show", "lakeview", "--at", "2026-03-02T16:30Z")
    assert "  day:                holiday: Casimir Pulaski Day" in result.stdout
    assert "  standard deadline:  Tue 2026-03-03 08:00 CST (2026-03-03 14:00 UTC)" in result.stdout
    # Default: the hotline's clock (ManualClock: Monday 2026-01-05 15:00 UTC).
    result = run("show", "lakeview")
    assert result.exit_code == 0, result.stderr
    assert "  at:                 Mon 2026-01-05 09:00 CST (2026-01-05 15:00 UTC)" in result.stdout
    assert "  business time:      yes" in result.stdout
    assert "  school in session:  yes" in result.stdout
    assert "  standard deadline:  Mon 2026-01-05 10:00 CST (2026-01-05 16:00 UTC)" in result.stdout
    result = run("show", "lakeview", "--at", "next tuesday")
    assert result.exit_code == 1
    assert "--at 'next tuesday' is not an ISO date-time" in result.stderr

    result = run("remove-break", "1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "removed break #1 'Winter break' (break, 2026-12-21 to 2027-01-02, 13 days) "
        "from district 'lakeview'\n"
    )
    result = run("remove-break", "1")
    assert result.exit_code == 1
    assert "no break with id 1" in result.stderr
    assert "Winter break" not in run("list-breaks", "lakeview").stdout
    assert run("list-breaks", "nowhere").exit_code == 1


def test_load_calendar_unknown_district(directory_app: Flask) -> None:
    with hotline(directory_app).db.session() as session, pytest.raises(LookupError):
        load_calendar(session, 999)
