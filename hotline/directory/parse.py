"""Reading and checking a directory CSV without the database: bytes in, checked records (each
with the line the file shows it on) and every problem out.

:func:`parse_directory` is pure: no database, no session, no clock. It reads the whole file and
collects *every* problem, each with the line number the file shows (the header is line 1), so an
administrator fixes a file in one pass instead of one error per attempt. A file with any problem
gives no :class:`Directory` at all, so nothing of it can be applied. What only the database can
tell (a school code another district already owns) is checked by :mod:`hotline.directory.apply`.

Duty rows (role ``duty``) are the hotline's own supervisors on duty, called when a tip has no school
or a leg has nobody left to call. They belong to no district and no school, so their district and
school columns are empty and their phone numbers are written with + and the country code (there
is no district to tell the country).

Who a contact is (:attr:`ContactEntry.key`): its district, school (none for district-wide rows),
role and name, case and spacing ignored; for a duty contact, role and name. A person appears once
per school and role in a file.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import holidays
import phonenumbers
from phonenumbers import shortnumberinfo

from hotline.models import ContactRole

REQUIRED_COLUMNS: tuple[str, ...] = (
    "district_code",
    "district_name",
    "district_timezone",
    "school_code",
    "school_name",
    "role",
    "priority",
    "name",
    "phone",
    "sms",
    "email",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("district_holidays", "extension", "school_aliases")
#: Every column, in the order the exporter writes them.
COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

#: Roles whose rows must give an e-mail: the people who read tips in the portal (the duty
#: supervisors among them). A PSAP or police desk is reached by phone and may have no mailbox.
EMAIL_ROLES = frozenset(
    {ContactRole.SCHOOL_CONTACT, ContactRole.DISTRICT_CONTACT, ContactRole.PIO, ContactRole.DUTY}
)
#: The columns a duty row leaves empty: it belongs to no district and no school.
DUTY_EMPTY_COLUMNS: tuple[str, ...] = (
    "district_code",
    "district_name",
    "district_timezone",
    "school_code",
    "school_name",
    "district_holidays",
    "school_aliases",
)


# Column widths of the models, checked here so a long value is a line-numbered problem rather than
# a database error half-way through the transaction.
MAX_DISTRICT_CODE = 32
MAX_SCHOOL_CODE = 16
MAX_NAME = 200
MAX_EMAIL = 254
MAX_EXTENSION = 16
MAX_HOLIDAY_REGION = 16
MAX_PRIORITY = 999

#: 3-digit N11 service codes (211 ... 911), also when dialled with a leading 1.
_N11 = re.compile(r"1?[2-9]11")
#: Emergency numbers refused whatever the district's country: a contact on one of them would send
#: an automated alert call into an emergency line.
_EMERGENCY_NUMBERS = frozenset({"911", "112", "999", "000", "110", "119"})
_DISTRICT_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_EXTENSION = re.compile(r"[0-9*#w]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


# Results --------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the file, at the line the file shows (header = line 1)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class DistrictEntry:
    code: str
    name: str
    timezone: str
    #: A ``holidays`` country or ``COUNTRY-SUBDIVISION`` code, canonical case.
    holiday_region: str
    line: int


@dataclass(frozen=True)
class SchoolEntry:
    code: str
    name: str
    district_code: str
    line: int
    #: Other names people use for the school ("LHS", "the Ridge"), matched like its name.
    aliases: tuple[str, ...] = ()


#: Between a school's aliases in the ``school_aliases`` column.
ALIAS_SEPARATOR = ";"
MAX_ALIASES = 10


def parse_aliases(cell: str) -> tuple[str, ...]:
    """``"LHS; Lakeview"`` as its aliases: trimmed, empty ones dropped, each once (any case)."""
    seen: set[str] = set()
    out: list[str] = []
    for alias in (a.strip() for a in cell.split(ALIAS_SEPARATOR)):
        if alias and alias.casefold() not in seen:
            seen.add(alias.casefold())
            out.append(alias)
    return tuple(out)


#: (district code or None for duty rows, school code or None for district-wide and duty rows,
#: role, name folded): who a contact is.
ContactKey = tuple[str | None, str | None, ContactRole, str]


@dataclass(frozen=True)
class ContactEntry:
    line: int
    #: None for a duty row (and only for one).
    district_code: str | None
    school_code: str | None
    role: ContactRole
    priority: int
    name: str
    e164: str
    extension: str | None
    sms: bool
    email: str | None

    @property
    def key(self) -> ContactKey:
        return (self.district_code, self.school_code, self.role, name_key(self.name))

    @property
    def scope(self) -> str:
        """Where the contact is, for messages: "school 101 of district north", "the duty line"."""
        if self.district_code is None:
            return "the duty line"
        where = f"school {self.school_code}" if self.school_code else "the district"
        return f"{where} of district {self.district_code}"


@dataclass(frozen=True)
class Directory:
    """A valid file, in file order."""

    districts: tuple[DistrictEntry, ...]
    schools: tuple[SchoolEntry, ...]
    contacts: tuple[ContactEntry, ...]


@dataclass(frozen=True)
class ParseResult:
    #: None whenever there is a problem: a file with problems is never applied, even partly.
    directory: Directory | None
    problems: list[Problem]


# Helpers shared with the exporter ---------------------------------------------------------------


def name_key(name: str) -> str:
    """A name as identity: "Dr.  Ana Ruiz" and "dr. ana ruiz" are the same person."""
    return " ".join(name.split()).casefold()


def role_order(role: ContactRole) -> int:
    return list(ContactRole).index(role)


# Regions: time zone -> country -> holiday calendar and phone-number region -----------------------


def _read_zone_tab(content: str) -> dict[str, str]:
    zones: dict[str, str] = {}
    for raw in content.splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = raw.split("\t")
        if len(parts) >= 3:
            zones[parts[2].strip()] = parts[0].strip().upper()
    return zones


@functools.cache
def _zone_countries() -> dict[str, str]:
    """IANA zone -> ISO country, from the tz database's zone.tab (the system's, else the ``tzdata``
    package's). Empty when neither exists: districts then name their country in
    ``district_holidays``."""
    for directory in zoneinfo.TZPATH:
        path = Path(directory) / "zone.tab"
        if path.is_file():
            return _read_zone_tab(path.read_text(encoding="utf-8"))
    try:
        tab = resources.files("tzdata") / "zoneinfo" / "zone.tab"
        return _read_zone_tab(tab.read_text(encoding="utf-8"))
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        return {}


def country_of_timezone(timezone: str) -> str | None:
    """The ISO country of an IANA zone (America/Chicago -> US); None for UTC, Etc/... and links."""
    return _zone_countries().get(timezone)


@functools.cache
def _available_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def _timezones_by_folded_name() -> dict[str, str]:
    return {tz.casefold(): tz for tz in _available_timezones()}


@functools.cache
def _holiday_calendars() -> dict[str, tuple[str, ...]]:
    supported: dict[str, list[str]] = holidays.list_supported_countries(include_aliases=False)
    return {country.upper(): tuple(subdivs) for country, subdivs in supported.items()}


def resolve_holiday_region(value: str) -> tuple[str | None, str | None]:
    """(canonical region, None) or (None, why not). ``us-il`` -> ``US-IL``."""
    country, _, subdivision = value.strip().partition("-")
    country = country.strip().upper()
    subdivision = subdivision.strip()
    calendars = _holiday_calendars()
    if country not in calendars:
        return None, (
            f"district_holidays {value!r}: the holidays package has no calendar for country "
            f"{country!r} (use an ISO country code such as US, or a subdivision such as US-IL)"
        )
    if not subdivision:
        return country, None
    by_folded = {s.casefold(): s for s in calendars[country]}
    canonical = by_folded.get(subdivision.casefold())
    if canonical is None:
        known = ", ".join(calendars[country][:12])
        more = ", ..." if len(calendars[country]) > 12 else ""
        return None, (
            f"district_holidays {value!r}: {country} has no subdivision {subdivision!r} in the "
            f"holidays package (known: {known}{more})"
            if calendars[country]
            else f"district_holidays {value!r}: the holidays package has no subdivisions for "
            f"{country}; use {country}"
        )
    region = f"{country}-{canonical}"
    if len(region) > MAX_HOLIDAY_REGION:
        return None, f"district_holidays {value!r} is longer than {MAX_HOLIDAY_REGION} characters"
    return region, None


# Phone numbers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Phone:
    e164: str | None = None
    extension: str | None = None
    error: str | None = None


_REFUSED = (
    "the hotline calls every contact on a full number; the PSAP is reached on its 10-digit "
    "administrative line, never on an emergency or short code"
)


def refused_code(raw: str, region: str | None) -> str | None:
    """Why ``raw`` is an emergency number or an N11 code (None if it is neither). Needs no
    country for 911, 112, 999 and N11, so it is checked even when the district's is unknown."""
    digits = re.sub(r"\D", "", raw)
    if digits in _EMERGENCY_NUMBERS or (
        region is not None and phonenumbers.is_emergency_number(digits, region)
    ):
        return f"phone {raw!r} is an emergency number: {_REFUSED}"
    if _N11.fullmatch(digits):
        return f"phone {raw!r} is an N11 short code: {_REFUSED}"
    return None


def normalize_phone(raw: str, region: str | None) -> _Phone:
    """Parse a number as people write it ("(312) 555-0142") into E.164.

    Emergency and short codes are refused with their own message: "911" in a PSAP row is the
    most likely mistake in a directory, and an automated alert must never dial it.
    """
    refused = refused_code(raw, region)
    if refused is not None:
        return _Phone(error=refused)
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        hint = "" if raw.startswith("+") or region else " (write it as +<country code> ...)"
        return _Phone(error=f"phone {raw!r} is not a phone number{hint}")
    if not phonenumbers.is_valid_number(parsed):
        if shortnumberinfo.is_valid_short_number(parsed):
            return _Phone(error=f"phone {raw!r} is a short code: {_REFUSED}")
        where = f" in {region}" if region and not raw.startswith("+") else ""
        return _Phone(
            error=f"phone {raw!r} is not a valid number{where} (give the area code; numbers "
            "of another country start with + and the country code)"
        )
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return _Phone(e164=e164, extension=parsed.extension or None)


def _email_problem(email: str) -> str | None:
    if len(email) > MAX_EMAIL:
        return f"email is longer than {MAX_EMAIL} characters"
    if not _EMAIL.fullmatch(email):
        return f"email {email!r} is not an e-mail address (one @, no spaces)"
    domain = email.rpartition("@")[2]
    if "." not in domain or domain.startswith(".") or domain.endswith(".") or ".." in domain:
        return f"email {email!r} has no valid domain (expected something like name@school.org)"
    return None


# Parsing --------------------------------------------------------------------------------------


@dataclass
class _Record:
    line: int
    cells: dict[str, str]

    @property
    def duty(self) -> bool:
        """A duty row: no district to read or to check (its empty columns are checked alone)."""
        return self.cells["role"].casefold() == ContactRole.DUTY.value


@dataclass
class _DistrictDraft:
    code: str
    line: int
    name: str
    timezone: str
    holidays: str | None
    holidays_line: int
    timezone_ok: bool = False
    region: str | None = None
    phone_region: str | None = None


@dataclass
class _Collector:
    problems: list[Problem] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        self.problems.append(Problem(line, message))

    def sorted(self) -> list[Problem]:
        # Stable: problems of one line keep the order of the columns they were found in.
        return sorted(self.problems, key=lambda p: p.line)


def _decode(data: str | bytes, out: _Collector) -> str | None:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        out.add(line, 'the file is not UTF-8 text (save it as "CSV UTF-8")')
        return None


def _read_records(text_: str, out: _Collector) -> tuple[list[str] | None, list[_Record]]:
    """The header's column names and the non-blank records, each with the line it starts on."""
    reader = csv.reader(io.StringIO(text_, newline=""), skipinitialspace=True, strict=True)
    header: list[str] | None = None
    header_line = 1
    width = 0
    records: list[_Record] = []
    last_line = 0
    while True:
        start = last_line + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.add(
                start,
                f"the CSV cannot be read from here on ({exc}): a value holding a comma, a quote "
                "or a line break must be in double quotes, with any quote inside doubled",
            )
            return header, []
        last_line = reader.line_num
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue  # blank line, or a spreadsheet's row of empty cells
        if header is None:
            # A spreadsheet that once had something further right writes empty trailing header
            # cells, and as many empty cells on every row: those columns are not there.
            width = len(cells)
            header = [c.lower() for c in cells]
            while header and not header[-1]:
                header.pop()
            header_line = start
            if not _check_header(header, header_line, out):
                return header, []
            continue
        if len(cells) > width or any(cells[len(header) :]):
            out.add(
                start,
                f"{len(cells)} values but the header has {len(header)} columns (a value "
                "holding a comma must be in double quotes)",
            )
            continue
        # Missing trailing cells are empty ones: some tools drop trailing commas.
        padded = cells + [""] * (len(header) - len(cells))
        records.append(_Record(start, dict(zip(header, padded, strict=False))))
    if header is None:
        out.add(
            1,
            "the file is empty: expected a header line with the columns "
            + ", ".join(REQUIRED_COLUMNS),
        )
    elif not records and not out.problems:
        out.add(header_line, "the file has a header but no contacts")
    return header, records


def _check_header(header: list[str], line: int, out: _Collector) -> bool:
    if not any(column in COLUMNS for column in header):
        # Most likely a file without its header line: one clear message, not two lists.
        out.add(
            line,
            "the first line is not a header: it must name the columns "
            + ", ".join(REQUIRED_COLUMNS)
            + " (and optionally "
            + ", ".join(OPTIONAL_COLUMNS)
            + ")",
        )
        return False
    ok = True
    seen: set[str] = set()
    for position, column in enumerate(header, 1):
        if not column:
            out.add(line, f"column {position} of the header has no name")
            ok = False
        elif column in seen:
            out.add(line, f"column {column!r} appears twice in the header")
            ok = False
        seen.add(column)
    unknown = [c for c in header if c and c not in COLUMNS]
    if unknown:
        out.add(
            line,
            "unknown column(s) "
            + ", ".join(repr(c) for c in unknown)
            + "; the columns are "
            + ", ".join(REQUIRED_COLUMNS)
            + " and optionally "
            + ", ".join(OPTIONAL_COLUMNS),
        )
        ok = False
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if missing:
        out.add(line, "missing required column(s): " + ", ".join(missing))
        ok = False
    return ok


def _check_timezone(value: str, line: int, out: _Collector) -> bool:
    if not value:
        out.add(line, "district_timezone is required (an IANA time zone such as America/Chicago)")
        return False
    if value in _available_timezones():
        return True
    suggestion = _timezones_by_folded_name().get(value.casefold())
    hint = f"; did you mean {suggestion}?" if suggestion else " such as America/Chicago"
    out.add(line, f"district_timezone {value!r} is not an IANA time zone{hint}")
    return False


def _district_code(rec: _Record, out: _Collector) -> str | None:
    """The row's district code, or None (reported) when it is missing or malformed."""
    code = rec.cells["district_code"]
    if not code:
        out.add(rec.line, "district_code is required (only duty rows have none)")
        return None
    if not _DISTRICT_CODE.fullmatch(code) or len(code) > MAX_DISTRICT_CODE:
        out.add(
            rec.line,
            f"district_code {code!r} must be 1 to {MAX_DISTRICT_CODE} letters, digits, "
            "'-', '_' or '.'",
        )
        return None
    return code


def _new_district(rec: _Record, code: str, out: _Collector) -> _DistrictDraft:
    """A district as its first row gives it; later rows are only compared with this one."""
    name = rec.cells["district_name"]
    timezone = rec.cells["district_timezone"]
    holidays_ = rec.cells.get("district_holidays", "") or None
    draft = _DistrictDraft(code, rec.line, name, timezone, holidays_, rec.line)
    if not name:
        out.add(rec.line, "district_name is required")
    elif len(name) > MAX_NAME:
        out.add(rec.line, f"district_name is longer than {MAX_NAME} characters")
    draft.timezone_ok = _check_timezone(timezone, rec.line, out)
    return draft


_SAME_ON_ALL_ROWS = "a district's name, time zone and holidays are the same on all its rows"


def _check_same_district(rec: _Record, draft: _DistrictDraft, out: _Collector) -> None:
    """A later row of a district repeats the name and time zone of its first row. Holidays need
    giving on one row only: the first row to give them sets them, and any other must agree."""
    name = rec.cells["district_name"]
    timezone = rec.cells["district_timezone"]
    holidays_ = rec.cells.get("district_holidays", "")
    if name != draft.name:
        out.add(
            rec.line,
            f"district_name {name!r} differs from {draft.name!r} on line {draft.line} for "
            f"district {draft.code}: {_SAME_ON_ALL_ROWS}",
        )
    if timezone != draft.timezone:
        out.add(
            rec.line,
            f"district_timezone {timezone!r} differs from {draft.timezone!r} on line "
            f"{draft.line} for district {draft.code}: {_SAME_ON_ALL_ROWS}",
        )
    if not holidays_:
        return
    if draft.holidays is None:
        draft.holidays, draft.holidays_line = holidays_, rec.line
    elif holidays_.casefold() != draft.holidays.casefold():
        out.add(
            rec.line,
            f"district_holidays {holidays_!r} differs from {draft.holidays!r} on line "
            f"{draft.holidays_line} for district {draft.code}: {_SAME_ON_ALL_ROWS}",
        )


def _region_of_timezone_country(
    draft: _DistrictDraft, tz_country: str | None, out: _Collector
) -> str | None:
    """The holiday region when district_holidays is not given: the time zone's country."""
    if tz_country is None:
        out.add(
            draft.line,
            f"cannot tell the country of time zone {draft.timezone!r} for district "
            f"{draft.code}: give it in a district_holidays column (such as US-IL)",
        )
        return None
    if tz_country not in _holiday_calendars():
        out.add(
            draft.line,
            f"the holidays package has no calendar for {tz_country}, the country of "
            f"{draft.timezone}: give district_holidays for district {draft.code}",
        )
        return None
    return tz_country


def _resolve_regions(draft: _DistrictDraft, out: _Collector) -> None:
    """Set the district's holiday region and the region its phone numbers are read in."""
    tz_country = country_of_timezone(draft.timezone) if draft.timezone_ok else None
    if draft.holidays is not None:
        region, error = resolve_holiday_region(draft.holidays)
        if error is not None:
            out.add(draft.holidays_line, error)
        draft.region = region
    elif draft.timezone_ok:
        draft.region = _region_of_timezone_country(draft, tz_country, out)
    # Phone numbers written the national way are read as numbers of the district's country.
    holiday_country = draft.region.partition("-")[0] if draft.region else None
    draft.phone_region = tz_country or holiday_country


def _districts(records: Sequence[_Record], out: _Collector) -> dict[str, _DistrictDraft]:
    """District attributes, the same on every row of a district. An empty district_holidays cell
    means "as the district's other rows say" (or the default), so it needs giving only once."""
    drafts: dict[str, _DistrictDraft] = {}
    for rec in records:
        if rec.duty:
            continue
        code = _district_code(rec, out)
        if code is None:
            continue
        draft = drafts.get(code)
        if draft is None:
            drafts[code] = _new_district(rec, code, out)
        else:
            _check_same_district(rec, draft, out)
    # Regions only once every row is read: the holidays may be given on any of them.
    for draft in drafts.values():
        _resolve_regions(draft, out)
    return drafts


# One reader or check per field group of a contact row. Each reports its own problems at the row's
# line, in column order; _contact runs them in that order because problems of one line are listed
# in the order they were found.


def _role(rec: _Record, out: _Collector) -> ContactRole | None:
    raw_role = rec.cells["role"]
    try:
        return ContactRole(raw_role.casefold())
    except ValueError:
        what = f"role {raw_role!r} is not one of" if raw_role else "role is required, one of"
        out.add(rec.line, f"{what} " + ", ".join(r.value for r in ContactRole))
        return None


def _check_duty_columns_empty(rec: _Record, out: _Collector) -> None:
    filled = [column for column in DUTY_EMPTY_COLUMNS if rec.cells.get(column)]
    if filled:
        out.add(
            rec.line,
            "a duty row is one of the hotline's own supervisors on duty, outside any district "
            "and school: leave " + ", ".join(filled) + " empty",
        )


def _check_district_wide(rec: _Record, role: ContactRole | None, out: _Collector) -> None:
    """A row without a school_code."""
    school_name = rec.cells["school_name"]
    if school_name:
        out.add(rec.line, f"school_name {school_name!r} without a school_code")
    if rec.cells.get("school_aliases"):
        out.add(rec.line, "school_aliases without a school_code")
    if role is ContactRole.SCHOOL_CONTACT:
        out.add(rec.line, "school_code is required for a school_contact row")


def _check_school(
    rec: _Record, school_code: str, role: ContactRole | None, out: _Collector
) -> None:
    """A row with a school_code."""
    school_name = rec.cells["school_name"]
    if not _school_code_ok(school_code):
        out.add(
            rec.line,
            f"school_code {school_code!r} must be 1 to {MAX_SCHOOL_CODE} digits: callers key "
            "it in on the phone",
        )
    if not school_name:
        out.add(rec.line, f"school_name is required with school_code {school_code}")
    elif len(school_name) > MAX_NAME:
        out.add(rec.line, f"school_name is longer than {MAX_NAME} characters")
    aliases = parse_aliases(rec.cells.get("school_aliases", ""))
    if len(aliases) > MAX_ALIASES:
        out.add(rec.line, f"school_aliases has more than {MAX_ALIASES} names")
    if any(len(alias) > MAX_NAME for alias in aliases):
        out.add(rec.line, f"a school alias is longer than {MAX_NAME} characters")
    if role is ContactRole.DISTRICT_CONTACT:
        out.add(
            rec.line,
            "a district_contact row is district-wide: leave school_code and school_name "
            "empty (use school_contact for a school's own contacts)",
        )


def _check_placement(
    rec: _Record, school_code: str | None, role: ContactRole | None, out: _Collector
) -> None:
    """Where the row's contact is: the duty line, a whole district, or one school."""
    if role is ContactRole.DUTY:
        _check_duty_columns_empty(rec, out)
    elif school_code is None:
        _check_district_wide(rec, role, out)
    else:
        _check_school(rec, school_code, role, out)


def _priority(rec: _Record, out: _Collector) -> int:
    """1 (primary) upwards; 0 only for a row already reported."""
    raw_priority = rec.cells["priority"]
    if raw_priority.isdigit() and raw_priority.isascii() and 1 <= int(raw_priority) <= MAX_PRIORITY:
        return int(raw_priority)
    out.add(
        rec.line,
        f"priority {raw_priority!r} must be a whole number from 1 (primary) to {MAX_PRIORITY}"
        if raw_priority
        else "priority is required (1 = primary, 2 = secondary, ...)",
    )
    return 0


def _check_name(rec: _Record, out: _Collector) -> None:
    name = rec.cells["name"]
    if not name:
        out.add(rec.line, "name is required")
    elif len(name) > MAX_NAME:
        out.add(rec.line, f"name is longer than {MAX_NAME} characters")


def _phone(
    rec: _Record, district: _DistrictDraft | None, role: ContactRole | None, out: _Collector
) -> _Phone:
    """The row's number; an empty _Phone when it is missing or cannot be read."""
    raw_phone = rec.cells["phone"]
    if not raw_phone:
        out.add(rec.line, "phone is required")
        return _Phone()
    phone_region = district.phone_region if district is not None else None
    if phone_region is None and not raw_phone.startswith("+"):
        # The district's code or time zone is already reported; a national number cannot be
        # read without its country, and a second problem here would only repeat the first.
        # An emergency or N11 code needs no country, and is worth saying at once. A duty row has
        # no district at all: its number must carry its country.
        refused = refused_code(raw_phone, None)
        if refused is not None:
            out.add(rec.line, refused)
        elif role is ContactRole.DUTY:
            out.add(
                rec.line,
                f"phone {raw_phone!r} of a duty row must start with + and the country code "
                "(such as +1 312 555 0150): a duty row has no district to tell its country",
            )
        return _Phone()
    phone = normalize_phone(raw_phone, phone_region)
    if phone.error:
        out.add(rec.line, phone.error)
    return phone


def _extension(rec: _Record, phone: _Phone, out: _Collector) -> str | None:
    """The extension column, or else the one written in the phone number; not both."""
    extension = rec.cells.get("extension", "").lower() or None
    if extension is None:
        return phone.extension or None
    if not _EXTENSION.fullmatch(extension) or not re.search(r"[0-9*#]", extension):
        out.add(
            rec.line,
            f"extension {rec.cells['extension']!r} may hold only digits, * and #, and w for a "
            "half-second wait",
        )
    elif len(extension) > MAX_EXTENSION:
        out.add(rec.line, f"extension is longer than {MAX_EXTENSION} characters")
    if phone.extension and phone.extension != extension:
        out.add(
            rec.line,
            f"phone {rec.cells['phone']!r} has extension {phone.extension} but the extension "
            f"column says {extension}: give it once",
        )
    return extension


def _sms(rec: _Record, out: _Collector) -> bool:
    raw_sms = rec.cells["sms"].casefold()
    if raw_sms not in ("yes", "no"):
        out.add(
            rec.line,
            f"sms {rec.cells['sms']!r} must be yes or no"
            if rec.cells["sms"]
            else "sms is required (yes or no)",
        )
    return raw_sms == "yes"


def _email(rec: _Record, role: ContactRole | None, out: _Collector) -> str | None:
    email = rec.cells["email"] or None
    if email is None:
        if role is not None and role in EMAIL_ROLES:
            out.add(rec.line, f"email is required for a {role} row")
        return None
    error = _email_problem(email)
    if error:
        out.add(rec.line, error)
    return email


def _contact(
    rec: _Record, district: _DistrictDraft | None, out: _Collector
) -> tuple[ContactRole | None, ContactEntry | None]:
    """The row's contact when every field is valid; its role whenever that alone is valid (the
    PSAP-coverage check needs it without piling a second problem onto a row already reported).
    ``district`` is None for a duty row."""
    before = len(out.problems)
    school_code = rec.cells["school_code"] or None
    role = _role(rec, out)
    _check_placement(rec, school_code, role, out)
    priority = _priority(rec, out)
    _check_name(rec, out)
    phone = _phone(rec, district, role, out)
    extension = _extension(rec, phone, out)
    sms = _sms(rec, out)
    email = _email(rec, role, out)

    if len(out.problems) > before or role is None or phone.e164 is None:
        return role, None
    if (district is None) != (role is ContactRole.DUTY):
        return role, None  # a district row whose district is already reported
    return role, ContactEntry(
        line=rec.line,
        district_code=district.code if district is not None else None,
        school_code=school_code,
        role=role,
        priority=priority,
        name=rec.cells["name"],
        e164=phone.e164,
        extension=extension,
        sms=sms,
        email=email,
    )


def _school_code_ok(code: str) -> bool:
    return code.isascii() and code.isdigit() and len(code) <= MAX_SCHOOL_CODE


#: What makes two rows the same number: where the contact is, its role, number and extension.
_PhoneKey = tuple[str | None, str | None, ContactRole, str, str | None]


@dataclass
class _DirectoryDraft:
    """What the rows add up to, with the checks that span rows: a school's code and name, PSAP
    coverage, and contacts given twice."""

    schools: dict[str, SchoolEntry] = field(default_factory=dict)
    contacts: list[ContactEntry] = field(default_factory=list)
    line_of_key: dict[ContactKey, int] = field(default_factory=dict)
    line_of_phone: dict[_PhoneKey, int] = field(default_factory=dict)
    psap_schools: set[str] = field(default_factory=set)
    psap_districts: set[str] = field(default_factory=set)

    def add_school(self, rec: _Record, district: _DistrictDraft, out: _Collector) -> None:
        """The row's school, first seen here or the same as where it was first seen."""
        school_code = rec.cells["school_code"] or None
        school_name = rec.cells["school_name"]
        if school_code is None or not _school_code_ok(school_code):
            return  # district-wide, or a malformed code _contact has reported
        known = self.schools.get(school_code)
        aliases = parse_aliases(rec.cells.get("school_aliases", ""))
        if known is None:
            if school_name:
                self.schools[school_code] = SchoolEntry(
                    school_code, school_name, district.code, rec.line, aliases
                )
        elif known.district_code != district.code:
            out.add(
                rec.line,
                f"school_code {school_code} is already used by district "
                f"{known.district_code} on line {known.line}: school codes are unique across "
                "all districts (callers key them in)",
            )
        elif school_name and school_name != known.name:
            out.add(
                rec.line,
                f"school_name {school_name!r} differs from {known.name!r} on line "
                f"{known.line} for school {school_code}",
            )
        elif aliases and not known.aliases:
            # The aliases may be given on any one row of the school.
            self.schools[school_code] = replace(known, aliases=aliases)
        elif aliases and aliases != known.aliases:
            out.add(
                rec.line,
                f"school_aliases {ALIAS_SEPARATOR.join(aliases)!r} differ from "
                f"{ALIAS_SEPARATOR.join(known.aliases)!r} given before for school {school_code}",
            )

    def note_psap(self, rec: _Record, district: _DistrictDraft) -> None:
        """A psap row covers its school, or its whole district when it names no school."""
        school_code = rec.cells["school_code"] or None
        if school_code is None:
            self.psap_districts.add(district.code)
        else:
            self.psap_schools.add(school_code)

    def add_contact(self, entry: ContactEntry, out: _Collector) -> None:
        """Keep the contact unless an earlier row already gives its number or its person."""
        phone_key = (
            entry.district_code,
            entry.school_code,
            entry.role,
            entry.e164,
            entry.extension,
        )
        if phone_key in self.line_of_phone:
            out.add(
                entry.line,
                f"duplicate of line {self.line_of_phone[phone_key]}: the same {entry.role} number "
                f"{entry.e164} for {entry.scope}",
            )
            return
        if entry.key in self.line_of_key:
            out.add(
                entry.line,
                f"{entry.name!r} is already a {entry.role} for {entry.scope} on line "
                f"{self.line_of_key[entry.key]}: a person appears once per school and role",
            )
            return
        self.line_of_phone[phone_key] = entry.line
        self.line_of_key[entry.key] = entry.line
        self.contacts.append(entry)

    def check_psap_coverage(self, out: _Collector) -> None:
        """Every school has a PSAP to call: its own, or its district's."""
        for school in self.schools.values():
            if (
                school.code not in self.psap_schools
                and school.district_code not in self.psap_districts
            ):
                out.add(
                    school.line,
                    f"school {school.code} ({school.name}) is not covered by a PSAP: add a psap "
                    f"row for it or a district-wide psap row for district {school.district_code}",
                )


def parse_directory(data: str | bytes) -> ParseResult:
    """Read and check a directory file without touching the database. Never raises on bad input:
    every problem comes back, in line order."""
    out = _Collector()
    text_ = _decode(data, out)
    if text_ is None:
        return ParseResult(None, out.sorted())
    header, records = _read_records(text_, out)
    if header is None or not records:
        return ParseResult(None, out.sorted())

    district_drafts = _districts(records, out)
    directory = _DirectoryDraft()
    for rec in records:
        district = None if rec.duty else district_drafts.get(rec.cells["district_code"])
        role, entry = _contact(rec, district, out)
        if district is not None:
            directory.add_school(rec, district, out)
            if role is ContactRole.PSAP:
                directory.note_psap(rec, district)
        if entry is not None:
            directory.add_contact(entry, out)
    directory.check_psap_coverage(out)

    if out.problems:
        return ParseResult(None, out.sorted())
    districts = tuple(
        DistrictEntry(d.code, d.name, d.timezone, d.region or "", d.line)
        for d in district_drafts.values()
    )
    return ParseResult(
        Directory(districts, tuple(directory.schools.values()), tuple(directory.contacts)), []
    )
