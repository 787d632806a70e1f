"""Business calendars: business time per district, exact across time zones, DST, holidays and
school breaks.

A district's business time is the union of its weekly hours (local time, Monday=0), minus its
region's public holidays (the ``holidays`` package, with the subdivision: ``US-IL``) and the school
breaks and summer recess entered for it. Everything here is pure: a :class:`BusinessCalendar` is
built from plain values (or from a District row and its DistrictBreak rows) and answers questions
about timezone-aware instants. Results are UTC.

Conventions:

- Business intervals are half-open, ``[opening, closing)``: the closing instant itself is not
  business time (unless another interval opens there, as in a 24-hour district), while
  :meth:`BusinessCalendar.add_business_time` may return a closing instant (a deadline that uses
  up the day's last minute falls *at* closing time, not at the next opening).
- An end time of ``00:00`` (``"24:00"`` or ``"00:00"`` in a district's JSON) means the midnight
  that ends the day.
- Durations are real elapsed time: each local interval is turned into two UTC instants and the
  arithmetic is done on those, so a day ``00:00``-``24:00`` lasts 23 hours on the spring-forward
  day and 25 on the fall-back day.
- Local times that do not exist (the spring-forward gap) map to the instant of the change: an
  opening at 02:30 opens when the clocks jump to 03:00. Local times that happen twice (the
  fall-back hour) open at their first occurrence and close at their last.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.core.clock import ensure_utc
from hotline.models import DEFAULT_BUSINESS_HOURS, District, DistrictBreak

__all__ = [
    "DEADLINES",
    "MAX_SEARCH_DAYS",
    "WALL_CLOCK_LEVELS",
    "Break",
    "BusinessCalendar",
    "NoBusinessTimeError",
    "load_calendar",
    "notify_deadline",
    "parse_weekly_hours",
    "resolve_holiday_region",
]

#: How far ahead a search for business time (or a school session) looks before giving up.
MAX_SEARCH_DAYS: Final = 400

#: Notification deadlines per tip level (the README's table). Critical runs on the wall clock at
#: any hour; the others are business time.
DEADLINES: Final[Mapping[str, timedelta]] = MappingProxyType(
    {
        "critical": timedelta(minutes=20),
        "standard": timedelta(hours=1),
        "other": timedelta(hours=4),
    }
)
#: Levels whose deadline is wall-clock time rather than business time.
WALL_CLOCK_LEVELS: Final = frozenset({"critical"})

WEEKDAY_KEYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MIDNIGHT: Final = time(0)
#: The school day when a district sets none (the District model's defaults).
DEFAULT_SCHOOL_DAY: Final = (time(7, 30), time(15, 30))
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")

Interval = tuple[datetime, datetime]


class NoBusinessTimeError(ValueError):
    """No business time (or school session) within :data:`MAX_SEARCH_DAYS` days."""


class Break(NamedTuple):
    """A school break or summer recess, dates inclusive, in the district's local calendar."""

    starts_on: date
    ends_on: date
    name: str = "school break"


# Holidays -------------------------------------------------------------------------------------


@functools.cache
def _supported_regions() -> dict[str, tuple[str, ...]]:
    supported: dict[str, list[str]] = holidays.list_supported_countries(include_aliases=False)
    return {country.upper(): tuple(subdivs) for country, subdivs in supported.items()}


def resolve_holiday_region(region: str) -> str:
    """The canonical spelling of a ``holidays`` region (``us-il`` -> ``US-IL``); ValueError when
    the package has no calendar for it."""
    country, _, subdivision = region.strip().partition("-")
    country = country.strip().upper()
    subdivision = subdivision.strip()
    calendars = _supported_regions()
    if country not in calendars:
        raise ValueError(
            f"holiday region {region!r}: the holidays package has no calendar for country "
            f"{country!r} (use an ISO country code such as US, or a subdivision such as US-IL)"
        )
    if not subdivision:
        return country
    canonical = {s.casefold(): s for s in calendars[country]}.get(subdivision.casefold())
    if canonical is None:
        raise ValueError(
            f"holiday region {region!r}: the holidays package has no subdivision "
            f"{subdivision!r} for {country}"
        )
    return f"{country}-{canonical}"


@functools.lru_cache(maxsize=1024)
def _holidays(region: str, year: int) -> Mapping[date, str]:
    """The public holidays of a canonical region in one year, as a read-only {date: name}."""
    country, _, subdivision = region.partition("-")
    calendar = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    return MappingProxyType({day: str(name) for day, name in calendar.items()})


# Weekly hours ---------------------------------------------------------------------------------


def _minutes_end(t: time) -> timedelta:
    """An end time as an offset into the day: 00:00 is the midnight that ends the day."""
    if t == MIDNIGHT:
        return timedelta(days=1)
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _minutes_start(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _fmt(t: time, *, end: bool = False) -> str:
    if end and t == MIDNIGHT:
        return "24:00"
    return t.isoformat(timespec="seconds" if t.second else "minutes")


def _check_day(day: str, intervals: Iterable[tuple[time, time]]) -> tuple[tuple[time, time], ...]:
    checked: list[tuple[time, time]] = []
    for pair in intervals:
        if len(pair) != 2:
            raise ValueError(f"business hours for {day}: {pair!r} is not a (start, end) pair")
        start, end = pair
        if not isinstance(start, time) or not isinstance(end, time):
            raise ValueError(f"business hours for {day}: {pair!r} is not a pair of times")
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError(
                f"business hours for {day}: times are local to the district, without a zone"
            )
        if _minutes_end(end) <= _minutes_start(start):
            raise ValueError(
                f"business hours for {day}: {_fmt(start)}-{_fmt(end, end=True)} ends before "
                "it starts (the end must be after the start)"
            )
        checked.append((start, end))
    checked.sort(key=lambda p: _minutes_start(p[0]))
    for (s1, e1), (s2, e2) in itertools.pairwise(checked):
        if _minutes_start(s2) < _minutes_end(e1):
            raise ValueError(
                f"business hours for {day}: {_fmt(s1)}-{_fmt(e1, end=True)} and "
                f"{_fmt(s2)}-{_fmt(e2, end=True)} overlap"
            )
    return tuple(checked)


def _parse_time(day: str, value: Any, *, end: bool) -> time:
    match = _TIME_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"business hours for {day}: {value!r} is not a time (HH:MM)")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if end and (hour, minute, second) == (24, 0, 0):
        return MIDNIGHT
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"business hours for {day}: {value!r} is not a time of day")
    return time(hour, minute, second)


def parse_weekly_hours(value: Any) -> dict[int, tuple[tuple[time, time], ...]]:
    """A district's ``business_hours`` JSON ({"mon": [["07:00", "17:00"]], ...}; a missing day
    is closed; an end of "24:00" or "00:00" is the midnight ending the day) as {weekday: hours}.

    Raises ValueError with a clear message for anything else.
    """
    if not isinstance(value, Mapping):
        raise ValueError(
            f'business hours {value!r} are not an object like {{"mon": [["07:00", "17:00"]]}}'
        )
    hours: dict[int, tuple[tuple[time, time], ...]] = {}
    for key, intervals in value.items():
        day = str(key).strip().lower()
        if day not in WEEKDAY_KEYS:
            raise ValueError(f"business hours: unknown day {key!r} (use {', '.join(WEEKDAY_KEYS)})")
        if intervals is None:
            intervals = []
        if not isinstance(intervals, list | tuple):
            raise ValueError(
                f'business hours for {day}: {intervals!r} is not a list like [["07:00", "17:00"]]'
            )
        pairs: list[tuple[time, time]] = []
        for pair in intervals:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ValueError(
                    f'business hours for {day}: {pair!r} is not a pair like ["07:00", "17:00"]'
                )
            pairs.append(
                (_parse_time(day, pair[0], end=False), _parse_time(day, pair[1], end=True))
            )
        hours[WEEKDAY_KEYS.index(day)] = _check_day(day, pairs)
    return hours


# The calendar ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessCalendar:
    """One district's business time and school sessions. Every method takes timezone-aware
    datetimes (naive ones raise ValueError) and returns UTC."""

    #: IANA zone, e.g. America/Chicago.
    timezone: str
    #: Local opening hours per weekday (Monday=0); a missing or empty day is closed. An end of
    #: 00:00 is the midnight that ends the day.
    weekly_hours: Mapping[int, Sequence[tuple[time, time]]] = field(compare=False)
    #: A ``holidays`` country or country-subdivision: ``US`` or ``US-IL``.
    holiday_region: str
    #: School breaks and summer recess, (first day, last day[, name]), inclusive.
    breaks: Sequence[tuple[date, date] | tuple[date, date, str]] = ()
    #: The school day, local time: a Critical tip outside it alerts law enforcement.
    school_day: tuple[time, time] = DEFAULT_SCHOOL_DAY
    #: Weekdays with school (Monday=0).
    school_weekdays: frozenset[int] = frozenset(range(5))

    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    #: The weekly hours checked and sorted, Monday to Sunday (what equality and hashing use).
    _hours: tuple[tuple[tuple[time, time], ...], ...] = field(init=False, repr=False)
    _breaks: tuple[Break, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r} (use an IANA name)") from None
        region = resolve_holiday_region(self.holiday_region)
        hours: list[tuple[tuple[time, time], ...]] = [() for _ in range(7)]
        for weekday, intervals in self.weekly_hours.items():
            if not isinstance(weekday, int) or not 0 <= weekday <= 6:
                raise ValueError(f"business hours: weekday {weekday!r} is not 0 (Monday) to 6")
            hours[weekday] = _check_day(WEEKDAY_KEYS[weekday], intervals)
        if not any(hours):
            raise ValueError("business hours: no business hours on any day of the week")
        breaks: list[Break] = []
        for item in self.breaks:
            brk = Break(*item)
            if brk.ends_on < brk.starts_on:
                raise ValueError(
                    f"break {brk.name!r}: ends on {brk.ends_on} before it starts on {brk.starts_on}"
                )
            breaks.append(brk)
        start, end = self.school_day
        if start.tzinfo is not None or end.tzinfo is not None or end <= start:
            raise ValueError(
                f"school day {_fmt(start)}-{_fmt(end)}: the end must be after the start "
                "(local times, same day)"
            )
        if not self.school_weekdays <= frozenset(range(7)):
            raise ValueError(f"school weekdays {sorted(self.school_weekdays)} are not 0 to 6")
        object.__setattr__(self, "holiday_region", region)
        object.__setattr__(self, "breaks", tuple(sorted(breaks)))
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_hours", tuple(hours))
        object.__setattr__(self, "_breaks", tuple(sorted(breaks)))

    # Construction ---------------------------------------------------------------------------

    @classmethod
    def from_district(
        cls, district: District, breaks: Iterable[DistrictBreak] = ()
    ) -> BusinessCalendar:
        """The calendar of a District row and its DistrictBreak rows. A bad stored value raises
        ValueError naming the district."""
        # A District not yet flushed has no column defaults: use the same defaults.
        hours = district.business_hours
        if hours is None:
            hours = DEFAULT_BUSINESS_HOURS
        try:
            rows = list(breaks)
            for row in rows:
                if row.district_id != district.id:
                    raise ValueError(f"break #{row.id} {row.name!r} belongs to another district")
            return cls(
                timezone=district.timezone,
                weekly_hours=parse_weekly_hours(hours),
                holiday_region=district.holiday_region,
                breaks=[Break(row.starts_on, row.ends_on, row.name) for row in rows],
                school_day=(
                    district.school_day_start or DEFAULT_SCHOOL_DAY[0],
                    district.school_day_end or DEFAULT_SCHOOL_DAY[1],
                ),
            )
        except ValueError as exc:
            raise ValueError(f"district {district.code!r}: {exc}") from None

    # Days -----------------------------------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def local(self, t: datetime) -> datetime:
        """``t`` in the district's local time."""
        return ensure_utc(t).astimezone(self._zone)

    def is_holiday(self, d: date) -> str | None:
        """The name of the public holiday on ``d`` in this region, or None."""
        return _holidays(self.holiday_region, d.year).get(d)

    def on_break(self, d: date) -> str | None:
        """The name of the school break or summer recess covering ``d``, or None."""
        for brk in self._breaks:
            if brk.starts_on <= d <= brk.ends_on:
                return brk.name
        return None

    def is_business_day(self, d: date) -> bool:
        """``d`` has weekly hours and is neither a holiday nor on a break."""
        return bool(self._hours[d.weekday()]) and not self.is_holiday(d) and not self.on_break(d)

    def is_school_day(self, d: date) -> bool:
        return (
            d.weekday() in self.school_weekdays and not self.is_holiday(d) and not self.on_break(d)
        )

    # Local time to instants -----------------------------------------------------------------

    def _instant(self, d: date, t: time, *, latest: bool) -> datetime:
        """The UTC instant at which the local clock on ``d`` reads ``t``: its first occurrence,
        or its last with ``latest``; a time skipped by a spring-forward change maps to the
        change itself."""
        naive = datetime.combine(d, t)
        utc = naive.replace(tzinfo=self._zone, fold=1 if latest else 0).astimezone(UTC)
        if utc.astimezone(self._zone).replace(tzinfo=None) == naive:
            return utc
        return self._change_in_gap(naive)

    def _change_in_gap(self, naive: datetime) -> datetime:
        # The two readings of a skipped time lie either side of the change: bisect on whole
        # seconds (tz database changes happen on whole seconds) for the first instant with the
        # offset after the change.
        a = naive.replace(tzinfo=self._zone, fold=0).astimezone(UTC)
        b = naive.replace(tzinfo=self._zone, fold=1).astimezone(UTC)
        lo, hi = int(min(a, b).timestamp()), int(max(a, b).timestamp())
        after = datetime.fromtimestamp(hi, UTC).astimezone(self._zone).utcoffset()
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, UTC).astimezone(self._zone).utcoffset() == after:
                hi = mid
            else:
                lo = mid
        return datetime.fromtimestamp(hi, UTC)

    def _local_span(self, d: date, start: time, end: time) -> Interval:
        opening = self._instant(d, start, latest=False)
        if end == MIDNIGHT:
            closing = self._instant(d + timedelta(days=1), MIDNIGHT, latest=False)
        else:
            closing = self._instant(d, end, latest=True)
        return opening, closing

    def _day_intervals(self, d: date) -> list[Interval]:
        """The business intervals of local day ``d`` as UTC instants, by opening."""
        if not self.is_business_day(d):
            return []
        spans = (self._local_span(d, start, end) for start, end in self._hours[d.weekday()])
        return [(s, e) for s, e in spans if e > s]

    def _session(self, d: date) -> Interval | None:
        if not self.is_school_day(d):
            return None
        return self._local_span(d, *self.school_day)

    def _intervals_from(self, t: datetime, until: datetime | None = None) -> Iterator[Interval]:
        """Business intervals that end after ``t``, by opening (they may touch or overlap
        across days: callers keep a cursor). With ``until``, stops at the first that opens at or
        after it; without, raises NoBusinessTimeError after MAX_SEARCH_DAYS days without any."""
        d = t.astimezone(self._zone).date() - timedelta(days=1)
        last = until.astimezone(self._zone).date() + timedelta(days=1) if until else None
        empty_days = 0
        while last is None or d <= last:
            found = False
            for s, e in self._day_intervals(d):
                if until is not None and s >= until:
                    return
                if e > t:
                    found = True
                    yield s, e
            empty_days = 0 if found else empty_days + 1
            if last is None and empty_days > MAX_SEARCH_DAYS:
                raise NoBusinessTimeError(
                    f"no business time within {MAX_SEARCH_DAYS} days after "
                    f"{t.astimezone(self._zone).isoformat()} (check the hours and breaks of "
                    f"this calendar)"
                )
            d += timedelta(days=1)

    # Business time --------------------------------------------------------------------------

    def business_intervals(self, d: date) -> list[tuple[datetime, datetime]]:
        """The business intervals of local day ``d`` as UTC (opening, closing) pairs."""
        return self._day_intervals(d)

    def is_business_time(self, t: datetime) -> bool:
        """``t`` lies in a business interval (closing instants excluded)."""
        t = ensure_utc(t)
        d = t.astimezone(self._zone).date()
        return any(
            s <= t < e
            for day in (d - timedelta(days=1), d, d + timedelta(days=1))
            for s, e in self._day_intervals(day)
        )

    def next_business_time(self, t: datetime) -> datetime:
        """``t`` itself if it is business time, else the next opening (UTC)."""
        t = ensure_utc(t)
        for s, _e in self._intervals_from(t):
            return t if s <= t else s
        raise AssertionError("unreachable: _intervals_from never ends without `until`")

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The first instant by which ``duration`` of business time has passed since ``start``
        (UTC). It may be a closing instant; a zero duration returns ``start``."""
        start = ensure_utc(start)
        if duration < timedelta(0):
            raise ValueError(f"duration {duration} is negative")
        if duration == timedelta(0):
            return start
        remaining = duration
        cursor = start
        for s, e in self._intervals_from(start):
            s = max(s, cursor)
            if e <= s:
                continue
            if e - s >= remaining:
                return s + remaining
            remaining -= e - s
            cursor = e
        raise AssertionError("unreachable: _intervals_from never ends without `until`")

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """The business time from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
        a, b = ensure_utc(a), ensure_utc(b)
        if b < a:
            return -self.business_time_between(b, a)
        total = timedelta(0)
        cursor = a
        for s, e in self._intervals_from(a, until=b):
            s, e = max(s, cursor), min(e, b)
            if e > s:
                total += e - s
                cursor = e
        return total

    # School sessions ------------------------------------------------------------------------

    def school_in_session(self, t: datetime) -> bool:
        """School is in session at ``t``: a school weekday, not a holiday nor on a break, and
        between the school day's start (included) and end (excluded), local time."""
        t = ensure_utc(t)
        session = self._session(t.astimezone(self._zone).date())
        return session is not None and session[0] <= t < session[1]

    def next_school_session_change(self, t: datetime) -> datetime:
        """When ``school_in_session`` next changes after ``t``: the end of the current session,
        or the start of the next one (UTC)."""
        t = ensure_utc(t)
        d = t.astimezone(self._zone).date()
        for offset in range(MAX_SEARCH_DAYS + 1):
            session = self._session(d + timedelta(days=offset))
            if session is None:
                continue
            start, end = session
            if start > t:
                return start
            if end > t:
                return end
        raise NoBusinessTimeError(
            f"no school session within {MAX_SEARCH_DAYS} days after "
            f"{t.astimezone(self._zone).isoformat()}"
        )


# Loading and deadlines ------------------------------------------------------------------------


def load_calendar(session: Session, district_id: int) -> BusinessCalendar:
    """The calendar of a district from the database. LookupError for an unknown district,
    ValueError for a district whose stored calendar is invalid."""
    district = session.get(District, district_id)
    if district is None:
        raise LookupError(f"no district with id {district_id}")
    rows = session.scalars(
        select(DistrictBreak)
        .where(DistrictBreak.district_id == district_id)
        .order_by(DistrictBreak.starts_on, DistrictBreak.id)
    ).all()
    return BusinessCalendar.from_district(district, rows)


def notify_deadline(level: str, arrival: datetime, calendar: BusinessCalendar) -> datetime:
    """When every recipient of a tip of ``level`` arriving at ``arrival`` must have been notified
    (UTC): Critical 20 minutes at any hour, Standard 1 hour and Other 4 hours of business time."""
    key = str(level).strip().lower()
    budget = DEADLINES.get(key)
    if budget is None:
        raise ValueError(f"unknown tip level {level!r} (use {', '.join(DEADLINES)})")
    arrival = ensure_utc(arrival)
    if key in WALL_CLOCK_LEVELS:
        return arrival + budget
    return calendar.add_business_time(arrival, budget)
