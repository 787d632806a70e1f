"""``flask --app hotline calendar ...``: school breaks and summer recess per district, and a look
at a district's business time.

    calendar add-break DISTRICT_CODE START END NAME [--summer]
    calendar list-breaks [DISTRICT_CODE]
    calendar remove-break ID
    calendar show DISTRICT_CODE [--at ISO_DATETIME]
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.calendar import BusinessCalendar, load_calendar, notify_deadline
from hotline.models import BreakKind, District, DistrictBreak
from hotline.services import hotline

__all__ = ["calendar_cli"]

#: A break longer than this is almost certainly a typo in a year (and would leave the calendar
#: without business time for longer than a search looks ahead).
MAX_BREAK_DAYS = 366
MAX_NAME_LENGTH = 200

calendar_cli = AppGroup(
    "calendar",
    help="District business calendars: school breaks, summer recess and business time.",
)


def _parse_date(value: str, what: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise click.ClickException(f"{what} {value!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise click.ClickException(f"{what} {value!r} is not a valid date") from None


def _district(session: Session, code: str, *, lock: bool = False) -> District:
    query = select(District).where(District.code == code.strip())
    if lock:
        # Serialises concurrent add-break runs for one district on PostgreSQL (SQLite already
        # serialises writers).
        query = query.with_for_update()
    district = session.scalars(query).one_or_none()
    if district is None:
        known = ", ".join(session.scalars(select(District.code).order_by(District.code)))
        raise click.ClickException(
            f"no district with code {code!r}" + (f" (known: {known})" if known else "")
        )
    return district


def _describe(row: DistrictBreak) -> str:
    days = (row.ends_on - row.starts_on).days + 1
    return (
        f"#{row.id} {row.name!r} ({row.kind.value}, {row.starts_on} to {row.ends_on}, "
        f"{days} day{'s' if days != 1 else ''})"
    )


@calendar_cli.command("add-break")
@click.argument("district_code")
@click.argument("start")
@click.argument("end")
@click.argument("name")
@click.option("--summer", is_flag=True, help="The summer recess rather than a school break.")
def add_break(district_code: str, start: str, end: str, name: str, summer: bool) -> None:
    """Add a school break (or with --summer the summer recess) to DISTRICT_CODE from START to
    END, both YYYY-MM-DD and inclusive, in the district's local calendar. No business time and
    no school session on those days."""
    starts_on = _parse_date(start, "START")
    ends_on = _parse_date(end, "END")
    if ends_on < starts_on:
        raise click.ClickException(f"END {ends_on} is before START {starts_on}")
    days = (ends_on - starts_on).days + 1
    if days > MAX_BREAK_DAYS:
        raise click.ClickException(
            f"{starts_on} to {ends_on} is {days} days, longer than {MAX_BREAK_DAYS}: check the "
            "years"
        )
    name = name.strip()
    if not name:
        raise click.ClickException("NAME is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise click.ClickException(f"NAME is longer than {MAX_NAME_LENGTH} characters")
    services = hotline()
    with services.db.session() as session:
        district = _district(session, district_code, lock=True)
        clashes = session.scalars(
            select(DistrictBreak)
            .where(
                DistrictBreak.district_id == district.id,
                DistrictBreak.starts_on <= ends_on,
                DistrictBreak.ends_on >= starts_on,
            )
            .order_by(DistrictBreak.starts_on, DistrictBreak.id)
        ).all()
        if clashes:
            raise click.ClickException(
                f"{starts_on} to {ends_on} overlaps "
                + ", ".join(_describe(row) for row in clashes)
                + f" of district {district.code!r}; nothing was added"
            )
        row = DistrictBreak(
            district_id=district.id,
            name=name,
            kind=BreakKind.SUMMER if summer else BreakKind.BREAK,
            starts_on=starts_on,
            ends_on=ends_on,
            created_at=services.clock.now(),
        )
        session.add(row)
        session.flush()
        click.echo(f"added break {_describe(row)} to district {district.code!r}")


@calendar_cli.command("list-breaks")
@click.argument("district_code", required=False)
def list_breaks(district_code: str | None) -> None:
    """List the breaks of DISTRICT_CODE (default: of every district), by start date."""
    services = hotline()
    with services.db.session() as session:
        query = select(DistrictBreak, District.code).join(
            District, District.id == DistrictBreak.district_id
        )
        if district_code is not None:
            district = _district(session, district_code)
            query = query.where(DistrictBreak.district_id == district.id)
        rows = session.execute(
            query.order_by(District.code, DistrictBreak.starts_on, DistrictBreak.id)
        ).all()
        if not rows:
            click.echo("no breaks")
            return
        for row, code in rows:
            click.echo(f"{code}: {_describe(row)}")


@calendar_cli.command("remove-break")
@click.argument("break_id", metavar="ID", type=int)
def remove_break(break_id: int) -> None:
    """Remove the break with id ID (see list-breaks)."""
    services = hotline()
    with services.db.session() as session:
        row = session.get(DistrictBreak, break_id)
        if row is None:
            raise click.ClickException(f"no break with id {break_id}")
        code = session.scalars(select(District.code).where(District.id == row.district_id)).one()
        description = _describe(row)
        session.delete(row)
    click.echo(f"removed break {description} from district {code!r}")


def _parse_at(value: str, calendar: BusinessCalendar) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.ClickException(
            f"--at {value!r} is not an ISO date-time (e.g. 2026-03-06T16:30 or 2026-03-06T22:30Z)"
        ) from None
    if parsed.tzinfo is None:
        # A time without an offset is read in the district's own time zone.
        parsed = parsed.replace(tzinfo=calendar.zone)
    return parsed


def _when(calendar: BusinessCalendar, t: datetime) -> str:
    local = calendar.local(t)
    utc = local.astimezone(UTC)
    return f"{local:%a %Y-%m-%d %H:%M %Z} ({utc:%Y-%m-%d %H:%M} UTC)"


@calendar_cli.command("show")
@click.argument("district_code")
@click.option(
    "--at",
    "at",
    metavar="ISO_DATETIME",
    help="The moment to look at (default: now). Without an offset it is the district's local time.",
)
def show(district_code: str, at: str | None) -> None:
    """Show DISTRICT_CODE's business time and school session at a moment, and the deadlines of
    a tip arriving then."""
    services = hotline()
    with services.db.session() as session:
        district = _district(session, district_code)
        try:
            calendar = load_calendar(session, district.id)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        title = f"{district.name} ({district.code})"
    when = services.clock.now() if at is None else _parse_at(at, calendar)
    day = calendar.local(when).date()
    holiday, on_break = calendar.is_holiday(day), calendar.on_break(day)
    if on_break:
        today = f"on break: {on_break}"
    elif holiday:
        today = f"holiday: {holiday}"
    elif calendar.is_business_day(day):
        today = "business day"
    else:
        today = "no business hours"
    if holiday and on_break:
        today += f" (and holiday: {holiday})"
    in_session = calendar.school_in_session(when)
    lines = [
        (title, f"{calendar.timezone}, holidays {calendar.holiday_region}"),
        ("at", _when(calendar, when)),
        ("day", today),
        ("business time", "yes" if calendar.is_business_time(when) else "no"),
        (
            "school in session",
            "yes" if in_session else "no (a Critical tip also alerts law enforcement)",
        ),
        ("next business time", _when(calendar, calendar.next_business_time(when))),
        ("critical deadline", _when(calendar, notify_deadline("critical", when, calendar))),
        ("standard deadline", _when(calendar, notify_deadline("standard", when, calendar))),
        ("other deadline", _when(calendar, notify_deadline("other", when, calendar))),
    ]
    click.echo(lines[0][0] + ": " + lines[0][1])
    for label, value in lines[1:]:
        click.echo(f"  {label + ':':<20}{value}")
