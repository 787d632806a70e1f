"""Directory import and export (DESIGN.md section 5), on SQLite and on the real PostgreSQL.

Every database here is built by the Alembic migrations, never by ``create_all``, so the tests see
the schema production runs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from hotline.core.clock import ManualClock
from hotline.db import Database
from hotline.directory import (
    COLUMNS,
    Counts,
    ImportResult,
    export_directory,
    import_directory,
    load_sample_if_empty,
    parse_directory,
    sample_directory,
)
from hotline.migrate import upgrade
from hotline.models import Contact, ContactRole, District, PhoneNumber, School
from tests.services import throwaway_postgres_database

START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


# Databases ------------------------------------------------------------------------------------


def _sqlite_database(directory: Path) -> Database:
    db = Database(f"sqlite:///{(directory / 'hotline.sqlite3').as_posix()}")
    upgrade(db.engine)
    return db


def _postgres_database() -> Iterator[Database]:
    with throwaway_postgres_database() as url:
        db = Database(url)
        try:
            upgrade(db.engine)
            yield db
        finally:
            db.dispose()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, migrated, empty database."""
    if request.param == "sqlite":
        database = _sqlite_database(tmp_path)
        yield database
        database.dispose()
    else:
        yield from _postgres_database()


@pytest.fixture(scope="module", params=BACKENDS)
def loaded_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One database per backend holding the sample, shared by the bad-file cases. Sharing is
    safe because each case asserts that it changed nothing at all."""
    if request.param == "sqlite":
        database = _sqlite_database(tmp_path_factory.mktemp("loaded"))
        _ok(import_directory(database, ManualClock(START), sample_directory()))
        yield database
        database.dispose()
    else:
        for database in _postgres_database():
            _ok(import_directory(database, ManualClock(START), sample_directory()))
            yield database


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


# Helpers --------------------------------------------------------------------------------------


TABLES = ("districts", "schools", "phone_numbers", "contacts")


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the directory tables, every column: "nothing changed" means this is equal."""
    with db.engine.connect() as conn:
        return {
            table: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
            for table in TABLES
        }


def _ok(result: ImportResult) -> ImportResult:
    assert result.problems == [], "\n".join(str(p) for p in result.problems)
    assert result.summary is not None
    return result


def row(**overrides: str) -> dict[str, str]:
    base = {
        "district_code": "north",
        "district_name": "North District",
        "district_timezone": "America/Chicago",
        "school_code": "",
        "school_name": "",
        "role": "psap",
        "priority": "1",
        "name": "North Dispatch",
        "phone": "(312) 555-0190",
        "sms": "no",
        "email": "",
        "district_holidays": "US-IL",
        "extension": "",
    }
    unknown = set(overrides) - set(base)
    assert not unknown, unknown
    base.update(overrides)
    return base


def school_row(code: str, school: str, name: str, phone: str, **overrides: str) -> dict[str, str]:
    values = {
        "school_code": code,
        "school_name": school,
        "role": "school_contact",
        "name": name,
        "phone": phone,
        "sms": "yes",
        "email": name.lower().replace(" ", ".") + "@north.example.org",
    }
    values.update(overrides)
    return row(**values)


#: The columns a duty row leaves empty: every district and school column.
DUTY_EMPTY = tuple(c for c in COLUMNS if c.startswith(("district_", "school_")))


def duty_row(name: str, phone: str, **overrides: str) -> dict[str, str]:
    """A duty row: the hotline's own supervisor, no district and no school."""
    email = name.lower().replace(" ", ".") + "@hotline.example.org"
    empty = dict.fromkeys(DUTY_EMPTY, "")
    return row(
        **empty
        | {"role": "duty", "name": name, "phone": phone, "sms": "yes", "email": email}
        | overrides
    )


def duty_rows() -> list[dict[str, str]]:
    return [
        duty_row("Zoe Hart", "+1 312 555 0150"),
        duty_row("Yan Li", "+1 (312) 555-0151", priority="2", sms="no"),
    ]


def duty_contacts(db: Database) -> list[Contact]:
    """The active duty line as the dispatcher selects it."""
    with db.session() as session:
        return list(
            session.scalars(
                select(Contact)
                .where(
                    Contact.role == ContactRole.DUTY,
                    Contact.active.is_(True),
                    Contact.district_id.is_(None),
                )
                .order_by(Contact.priority, Contact.id)
            )
        )


def base_rows() -> list[dict[str, str]]:
    """A valid file: lines 2 to 6."""
    return [
        row(
            role="district_contact",
            name="Ann Lee",
            phone="(312) 555-0101",
            sms="yes",
            email="ann.lee@north.example.org",
        ),  # line 2
        row(),  # line 3
        school_row("101", "North High", "Bo Park", "(312) 555-0111"),  # line 4
        school_row("101", "North High", "Cy Diaz", "(312) 555-0112", priority="2"),  # line 5
        school_row("102", "North Middle", "Di Wu", "(312) 555-0121"),  # line 6
    ]


def to_csv(rows: list[dict[str, str]], columns: tuple[str, ...] | list[str] = COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def export(db: Database) -> str:
    with db.session() as session:
        return export_directory(session)


def contacts_by_name(db: Database) -> dict[str, Contact]:
    with db.session() as session:
        return {c.name: c for c in session.scalars(select(Contact))}


# The sample -----------------------------------------------------------------------------------


def test_sample_imports(db: Database, clock: ManualClock) -> None:
    result = _ok(import_directory(db, clock, sample_directory()))
    assert result.summary is not None
    assert (result.summary.districts_added, result.summary.schools.added) == (2, 6)
    with db.session() as session:
        districts = {d.code: d for d in session.scalars(select(District))}
        assert {code: (d.timezone, d.holiday_region) for code, d in districts.items()} == {
            "lakeview": ("America/Chicago", "US-IL"),
            "foothills": ("America/Denver", "US-CO"),
        }
        assert all(d.created_at == START and d.updated_at == START for d in districts.values())
        schools = list(session.scalars(select(School)))
        assert len({s.district_id for s in schools}) == 2
        contacts = list(session.scalars(select(Contact)))
        for school in schools:
            pocs = sorted(
                c.priority
                for c in contacts
                if c.school_id == school.id and c.role is ContactRole.SCHOOL_CONTACT
            )
            assert pocs == [1, 2, 3], school.code
        for district in districts.values():
            roles = {c.role for c in contacts if c.district_id == district.id}
            assert roles == set(ContactRole) - {ContactRole.DUTY}, district.code
        duty = [c for c in contacts if c.district_id is None]
        assert {c.role for c in duty} == {ContactRole.DUTY}
        assert sorted(c.priority for c in duty) == [1, 2]
        assert all(c.school_id is None and c.email for c in duty)
        assert any(c.extension for c in contacts)
        numbers = list(session.scalars(select(PhoneNumber.e164)))
        assert all(n.startswith("+1") and len(n) == 12 for n in numbers)
        assert all(c.active and c.deactivated_at is None for c in contacts)


def test_load_sample_if_empty(db: Database, clock: ManualClock) -> None:
    class Services:
        def __init__(self) -> None:
            self.db = db
            self.clock = clock

    assert load_sample_if_empty(Services()) is True
    before = snapshot(db)
    assert load_sample_if_empty(Services()) is False
    assert snapshot(db) == before


def test_sample_is_not_loaded_over_a_duty_line(db: Database, clock: ManualClock) -> None:
    """A directory holding only the real duty line is not empty: the sample's fictional
    supervisors must never replace it."""

    class Services:
        def __init__(self) -> None:
            self.db = db
            self.clock = clock

    _ok(import_directory(db, clock, to_csv(duty_rows())))
    before = snapshot(db)
    assert load_sample_if_empty(Services()) is False
    assert snapshot(db) == before


# Bad files: line number, message, nothing changed ----------------------------------------------


def _with(line: int, **overrides: str) -> str:
    """The base file with the row on ``line`` changed."""
    rows = base_rows()
    rows[line - 2] = {**rows[line - 2], **overrides}
    return to_csv(rows)


def _plus(*extra: dict[str, str]) -> str:
    return to_csv([*base_rows(), *extra])


def _duty(phone: str = "+1 312 555 0150", **overrides: str) -> str:
    """The base file and one duty row, on line 7."""
    return _plus(duty_row("Zoe Hart", phone, **overrides))


BAD_FILES: list[tuple[str, str | bytes, int, str]] = [
    ("empty", "", 1, "the file is empty"),
    ("only blank lines", "\n  \n\n", 1, "the file is empty"),
    ("header only", ",".join(COLUMNS) + "\n", 1, "has a header but no contacts"),
    (
        "missing column",
        to_csv(base_rows(), [c for c in COLUMNS if c != "sms"]),
        1,
        "missing required column(s): sms",
    ),
    ("no header", _plus().split("\n", 1)[1], 1, "the first line is not a header"),
    ("unknown column", to_csv(base_rows(), [*COLUMNS, "fax"]), 1, "unknown column(s) 'fax'"),
    ("duplicate column", ",".join([*COLUMNS, "email"]) + "\n", 1, "column 'email' appears twice"),
    (
        "nameless column",
        ",".join([*COLUMNS[:3], "", *COLUMNS[3:]]) + "\n",
        1,
        "column 4 of the header has no name",
    ),
    (
        "too many values",
        _plus().replace("Cy Diaz,", "Cy, Diaz,"),
        5,
        "14 values but the header has 13 columns",
    ),
    ("unterminated quote", _plus().replace("Di Wu", '"Di Wu'), 6, "the CSV cannot be read"),
    (
        "not utf-8",
        _plus().encode().replace(b"North Dispatch", b"North Disp\xe4tch"),
        3,
        "not UTF-8",
    ),
    ("district code missing", _with(4, district_code=""), 4, "district_code is required"),
    (
        "district code spaces",
        _with(2, district_code="north east"),
        2,
        "district_code 'north east' must be",
    ),
    ("district name missing", _with(2, district_name=""), 2, "district_name is required"),
    ("timezone missing", _with(2, district_timezone=""), 2, "district_timezone is required"),
    (
        "timezone unknown",
        _with(2, district_timezone="America/Chicgo"),
        2,
        "district_timezone 'America/Chicgo' is not an IANA time zone",
    ),
    (
        "timezone case",
        _with(2, district_timezone="america/chicago"),
        2,
        "did you mean America/Chicago?",
    ),
    (
        "timezone without country",
        to_csv([{**r, "district_timezone": "UTC", "district_holidays": ""} for r in base_rows()]),
        2,
        "cannot tell the country of time zone 'UTC'",
    ),
    (
        "holidays unknown country",
        _with(2, district_holidays="XX"),
        2,
        "no calendar for country 'XX'",
    ),
    (
        "holidays unknown subdivision",
        _with(2, district_holidays="US-ZZ"),
        2,
        "US has no subdivision 'ZZ'",
    ),
    (
        "district name differs",
        _with(4, district_name="North USD"),
        4,
        "district_name 'North USD' differs from 'North District' on line 2",
    ),
    (
        "timezone differs",
        _with(5, district_timezone="America/Denver"),
        5,
        "district_timezone 'America/Denver' differs from 'America/Chicago' on line 2",
    ),
    (
        "holidays differ",
        _with(6, district_holidays="US-IN"),
        6,
        "district_holidays 'US-IN' differs from 'US-IL' on line 2",
    ),
    ("role unknown", _with(4, role="principal"), 4, "role 'principal' is not one of"),
    ("role missing", _with(4, role=""), 4, "role is required"),
    ("priority zero", _with(5, priority="0"), 5, "priority '0' must be a whole number"),
    ("priority negative", _with(5, priority="-1"), 5, "priority '-1' must be a whole number"),
    ("priority decimal", _with(5, priority="1.5"), 5, "priority '1.5' must be a whole number"),
    ("priority words", _with(5, priority="first"), 5, "priority 'first' must be a whole number"),
    ("priority missing", _with(5, priority=""), 5, "priority is required"),
    (
        "school contact without school",
        _with(4, school_code="", school_name=""),
        4,
        "school_code is required for a school_contact row",
    ),
    (
        "district contact with school",
        _with(2, school_code="101", school_name="North High"),
        2,
        "a district_contact row is district-wide",
    ),
    (
        "school name without code",
        _with(3, school_name="North High"),
        3,
        "school_name 'North High' without a school_code",
    ),
    (
        "school code without name",
        _with(5, school_name=""),
        5,
        "school_name is required with school_code 101",
    ),
    (
        "school code not digits",
        _with(6, school_code="N-102"),
        6,
        "school_code 'N-102' must be 1 to 16 digits",
    ),
    (
        "school name differs",
        _with(5, school_name="North High School"),
        5,
        "school_name 'North High School' differs from 'North High' on line 4",
    ),
    (
        "school code in two districts",
        _plus(
            row(district_code="south", district_name="South District", phone="(312) 555-0290"),
            school_row(
                "101",
                "South High",
                "Ed Fox",
                "(312) 555-0211",
                district_code="south",
                district_name="South District",
            ),
        ),
        8,
        "school_code 101 is already used by district north on line 4",
    ),
    ("sms other", _with(4, sms="maybe"), 4, "sms 'maybe' must be yes or no"),
    ("sms missing", _with(4, sms=""), 4, "sms is required (yes or no)"),
    ("email missing", _with(4, email=""), 4, "email is required for a school_contact row"),
    (
        "pio email missing",
        _plus(row(role="pio", name="Press Office", phone="(312) 555-0104", email="")),
        7,
        "email is required for a pio row",
    ),
    ("email two at", _with(4, email="bo@@north.example.org"), 4, "is not an e-mail address"),
    ("email space", _with(4, email="bo park@north.example.org"), 4, "is not an e-mail address"),
    ("email no dot", _with(4, email="bo@localhost"), 4, "has no valid domain"),
    ("phone missing", _with(4, phone=""), 4, "phone is required"),
    ("phone words", _with(4, phone="call the office"), 4, "is not a phone number"),
    ("phone too short", _with(4, phone="555-0111"), 4, "'555-0111' is not a valid number in US"),
    ("phone bad area code", _with(4, phone="(012) 555-0111"), 4, "is not a valid number"),
    ("phone 911", _with(3, phone="911"), 3, "'911' is an emergency number"),
    ("phone 112", _with(3, phone="112"), 3, "'112' is an emergency number"),
    ("phone 311", _with(3, phone="311"), 3, "'311' is an N11 short code"),
    ("phone 1-411", _with(3, phone="1-411"), 3, "'1-411' is an N11 short code"),
    ("phone 988", _with(3, phone="988"), 3, "'988' is a short code"),
    (
        "extension letters",
        _with(2, extension="12a"),
        2,
        "extension '12a' may hold only digits, * and #",
    ),
    ("extension waits only", _with(2, extension="ww"), 2, "extension 'ww' may hold only"),
    (
        "extension twice",
        _with(2, phone="(312) 555-0101 ext. 12", extension="13"),
        2,
        "has extension 12 but the extension column says 13",
    ),
    ("name missing", _with(5, name=""), 5, "name is required"),
    (
        "duplicate row",
        _plus(school_row("101", "North High", "Bo Park (cell)", "312-555-0111")),
        7,
        "duplicate of line 4: the same school_contact number +13125550111 for school 101",
    ),
    (
        "duplicate person",
        _plus(school_row("101", "North High", "bo  PARK", "(312) 555-0119")),
        7,
        "'bo  PARK' is already a school_contact for school 101 of district north on line 4",
    ),
    (
        "school without PSAP",
        to_csv([r for r in base_rows() if r["role"] != "psap"]),
        3,
        "school 101 (North High) is not covered by a PSAP",
    ),
    (
        "district row without district",
        _with(3, district_code="", district_name="", district_timezone="", district_holidays=""),
        3,
        "district_code is required (only duty rows have none)",
    ),
    (
        "duty with a district",
        _duty(district_code="north"),
        7,
        "a duty row is one of the hotline's own supervisors on duty, outside any district and "
        "school: leave district_code empty",
    ),
    (
        "duty with every district column",
        _duty(
            "(312) 555-0150",
            **{k: v for k, v in row().items() if k in DUTY_EMPTY}
            | {"school_code": "101", "school_name": "North High"},
        ),
        7,
        "leave district_code, district_name, district_timezone, school_code, school_name, "
        "district_holidays empty",
    ),
    (
        "duty with a school",
        _duty(school_code="101", school_name="North High"),
        7,
        "leave school_code, school_name empty",
    ),
    ("duty with holidays", _duty(district_holidays="US-IL"), 7, "leave district_holidays empty"),
    ("duty email missing", _duty(email=""), 7, "email is required for a duty row"),
    ("duty email bad", _duty(email="zoe@hotline"), 7, "has no valid domain"),
    (
        "duty phone national",
        _duty("(312) 555-0150"),
        7,
        "phone '(312) 555-0150' of a duty row must start with + and the country code",
    ),
    ("duty phone words", _duty("+1 call me"), 7, "is not a phone number"),
    ("duty phone invalid", _duty("+1 012 555 0150"), 7, "'+1 012 555 0150' is not a valid number"),
    ("duty phone 911", _duty("911"), 7, "'911' is an emergency number"),
    ("duty phone +1 911", _duty("+1 911"), 7, "is an N11 short code"),
    ("duty phone 411", _duty("411"), 7, "'411' is an N11 short code"),
    ("duty phone missing", _duty(""), 7, "phone is required"),
    ("duty sms missing", _duty(sms=""), 7, "sms is"),
    ("duty priority missing", _duty(priority=""), 7, "priority is required"),
    ("duty extension letters", _duty(extension="x1"), 7, "extension 'x1' may hold only"),
    (
        "duty person twice",
        _plus(*duty_rows(), duty_row("zoe  HART", "+1 312 555 0159")),
        9,
        "'zoe  HART' is already a duty for the duty line on line 7",
    ),
    (
        "duty number twice",
        _plus(*duty_rows(), duty_row("Zoe Hart (cell)", "+13125550150")),
        9,
        "duplicate of line 7: the same duty number +13125550150 for the duty line",
    ),
    (
        "school code of another district in the database",
        _plus(school_row("1101", "North Annex", "Fay Ng", "(312) 555-0131")),
        7,
        "school_code 1101 belongs to district lakeview in the directory",
    ),
]


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [pytest.param(data, line, message, id=name) for name, data, line, message in BAD_FILES],
)
def test_bad_file_is_reported_and_changes_nothing(
    loaded_db: Database, data: str | bytes, line: int, message: str
) -> None:
    before = snapshot(loaded_db)
    result = import_directory(loaded_db, ManualClock(START + timedelta(days=1)), data)
    assert result.summary is None
    found = [(p.line, p.message) for p in result.problems]
    assert any(p_line == line and message in text_ for p_line, text_ in found), found
    assert snapshot(loaded_db) == before


def test_every_bad_file_case_is_otherwise_valid() -> None:
    """Guard for the table above: the base file and its additions really are valid, so each
    case tests the one thing it names."""
    assert parse_directory(to_csv(base_rows())).problems == []
    south = _plus(
        row(district_code="south", district_name="South District", phone="(312) 555-0290"),
        school_row(
            "201",
            "South High",
            "Ed Fox",
            "(312) 555-0211",
            district_code="south",
            district_name="South District",
        ),
    )
    assert parse_directory(south).problems == []
    assert parse_directory(_plus(*duty_rows())).problems == []
    assert parse_directory(to_csv(duty_rows())).problems == []


def test_all_problems_are_collected_in_line_order() -> None:
    rows = [{**r, "district_timezone": "Mars/Olympus"} for r in base_rows()]  # from line 2
    rows[2]["phone"] = "911"  # line 4
    rows[2]["sms"] = "sometimes"  # line 4 again
    rows[4]["priority"] = "0"  # line 6
    result = parse_directory(to_csv(rows))
    assert result.directory is None
    assert [(p.line, p.message.split(" ")[0]) for p in result.problems] == [
        (2, "district_timezone"),
        (4, "phone"),
        (4, "sms"),
        (6, "priority"),
    ]
    assert str(result.problems[0]).startswith("line 2: district_timezone 'Mars/Olympus'")


def test_a_good_district_before_a_bad_row_is_not_imported(db: Database, clock: ManualClock) -> None:
    _ok(import_directory(db, clock, sample_directory()))
    before = snapshot(db)
    # A complete, valid new district, then a change to an existing one, then one bad row.
    lakeview = [
        {**r, "phone": "(312) 555-0177"} if r["name"].startswith("Angela Brooks") else r
        for r in csv.DictReader(io.StringIO(export(db)))
        if r["district_code"] == "lakeview"
    ]
    rows = [*base_rows(), *lakeview, school_row("101", "North High", "Gus Oh", "911")]
    bad_line = len(rows) + 1
    result = import_directory(db, clock, to_csv(rows))
    assert [(p.line, p.message[:16]) for p in result.problems] == [(bad_line, "phone '911' is a")]
    assert snapshot(db) == before
    with db.session() as session:
        assert session.scalar(select(District).where(District.code == "north")) is None


# Phone numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["911", "311"])
def test_n11_numbers_are_refused_with_the_psap_explained(number: str) -> None:
    result = parse_directory(_with(3, phone=number))
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert problem.line == 3
    assert number in problem.message
    assert "PSAP is reached on its 10-digit administrative line" in problem.message


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("(312) 555-0142", "+13125550142"),
        ("312-555-0142", "+13125550142"),
        ("312.555.0142", "+13125550142"),
        ("1 (312) 555 0142", "+13125550142"),
        ("+1 312 555 0142", "+13125550142"),
        ("+13125550142", "+13125550142"),
        ("+44 20 7946 0018", "+442079460018"),
    ],
)
def test_national_formats_are_stored_in_e164(
    db: Database, clock: ManualClock, written: str, expected: str
) -> None:
    _ok(import_directory(db, clock, _with(5, phone=written)))
    assert contacts_by_name(db)["Cy Diaz"].phone_number_id is not None
    with db.session() as session:
        stored = session.scalar(
            select(PhoneNumber.e164).join(Contact).where(Contact.name == "Cy Diaz")
        )
    assert stored == expected


def test_phone_region_comes_from_the_district_time_zone() -> None:
    """No district_holidays column at all: the country (for holidays and for reading national
    numbers) is the time zone's."""
    rows = [
        {k: v for k, v in r.items() if k != "district_holidays"}
        | {"district_timezone": "America/Denver", "phone": r["phone"].replace("312", "303")}
        for r in base_rows()
    ]
    columns = [c for c in COLUMNS if c != "district_holidays"]
    result = parse_directory(to_csv(rows, columns))
    assert result.problems == []
    assert result.directory is not None
    assert result.directory.districts[0].holiday_region == "US"
    assert {c.e164[:5] for c in result.directory.contacts} == {"+1303"}


def test_extension_in_the_phone_column_is_kept() -> None:
    result = parse_directory(_with(2, phone="(312) 555-0101 ext. 204"))
    assert result.directory is not None
    first = result.directory.contacts[0]
    assert (first.e164, first.extension) == ("+13125550101", "204")


def test_shared_numbers_are_one_phone_number_row(db: Database, clock: ManualClock) -> None:
    with db.session() as session:  # a number the hotline already knows, with its own state
        session.add(PhoneNumber(e164="+13125550190", bad_for_sms=True, created_at=START))
    rows = [
        row(
            role="district_contact",
            name="Ann Lee",
            phone="(312) 555-0101",
            sms="yes",
            email="ann.lee@north.example.org",
        ),
        school_row("101", "North High", "Bo Park", "(312) 555-0111"),
        school_row("102", "North Middle", "Di Wu", "(312) 555-0121"),
        school_row("103", "North Elementary", "Jo Ray", "(312) 555-0131"),
    ]
    for code in ("101", "102", "103"):
        rows.append(
            row(
                school_code=code,
                school_name=next(r["school_name"] for r in rows if r["school_code"] == code),
            )
        )
    # The same police desk for a second district in another time zone.
    rows.append(row(role="law_enforcement", name="County Sheriff", phone="+1 312 555 0191"))
    rows.append(
        row(
            district_code="west",
            district_name="West District",
            district_timezone="America/Denver",
            district_holidays="US-CO",
            role="law_enforcement",
            name="County Sheriff",
            phone="(312) 555-0191",
        )
    )
    result = _ok(import_directory(db, clock, to_csv(rows)))
    assert result.summary is not None
    assert result.summary.phone_numbers_added == 5  # 0101, 0111, 0121, 0131, 0191
    with db.session() as session:
        psap = session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == "+13125550190"))
        assert psap is not None and psap.bad_for_sms is True  # the existing row, untouched
        users = session.scalars(select(Contact).where(Contact.phone_number_id == psap.id)).all()
        assert len(users) == 3 and {c.school_id for c in users}.isdisjoint({None})
        sheriff = session.scalars(
            select(Contact.district_id, Contact.phone_number_id).where(
                Contact.name == "County Sheriff"
            )
        ).all()
        assert len(sheriff) == 2
        assert session.scalar(select(func.count()).select_from(PhoneNumber)) == 6
        assert (
            session.scalar(
                select(func.count(func.distinct(Contact.phone_number_id))).where(
                    Contact.name == "County Sheriff"
                )
            )
            == 1
        )


# Schools and PSAP coverage -----------------------------------------------------------------------


def test_psap_coverage_school_row_or_district_row() -> None:
    no_psap = [r for r in base_rows() if r["role"] != "psap"]
    result = parse_directory(to_csv(no_psap))
    assert [str(p) for p in result.problems] == [
        "line 3: school 101 (North High) is not covered by a PSAP: add a psap row for it or a "
        "district-wide psap row for district north",
        "line 5: school 102 (North Middle) is not covered by a PSAP: add a psap row for it or a "
        "district-wide psap row for district north",
    ]
    # One school's own PSAP covers it and only it.
    own = [*no_psap, row(school_code="101", school_name="North High")]
    assert [p.line for p in parse_directory(to_csv(own)).problems] == [5]
    both = [*own, row(school_code="102", school_name="North Middle")]
    assert parse_directory(to_csv(both)).problems == []


def test_school_codes_are_unique_across_districts(db: Database, clock: ManualClock) -> None:
    _ok(import_directory(db, clock, to_csv(base_rows())))
    before = snapshot(db)
    south = [
        row(district_code="south", district_name="South District", phone="(312) 555-0290"),
        school_row(
            "102",
            "South Middle",
            "Ed Fox",
            "(312) 555-0211",
            district_code="south",
            district_name="South District",
        ),
    ]
    result = import_directory(db, clock, to_csv(south))
    assert [str(p) for p in result.problems] == [
        "line 3: school_code 102 belongs to district north in the directory: school codes are "
        "unique across all districts (callers key them in)"
    ]
    assert snapshot(db) == before
    # Even when north no longer lists it (the code stays with the school and its tips).
    _ok(import_directory(db, clock, to_csv([r for r in base_rows() if r["school_code"] != "102"])))
    result = import_directory(db, clock, to_csv(south))
    assert "belongs to district north (deactivated)" in result.problems[0].message


# Re-import ------------------------------------------------------------------------------------


def test_reimport_adds_updates_deactivates_and_reactivates(
    db: Database, clock: ManualClock
) -> None:
    _ok(import_directory(db, clock, to_csv(base_rows())))
    first = contacts_by_name(db)
    with db.session() as session:
        schools = {s.code: s.id for s in session.scalars(select(School))}

    clock.advance(timedelta(days=30))
    changed = base_rows()
    changed[3].update(phone="(312) 555-0118", priority="3")  # Cy Diaz: new number, priority
    changed[2].update(name="bo park", sms="no")  # same person, name re-cased: an update
    del changed[4]  # Di Wu and with her school 102
    changed.append(school_row("101", "North High", "Eve Stone", "(312) 555-0113", priority="2"))
    result = _ok(import_directory(db, clock, to_csv(changed)))
    s = result.summary
    assert s is not None
    assert s.contacts == Counts(added=1, updated=2, deactivated=1, unchanged=2)
    assert (s.duty_in_file, s.duty) == (False, Counts())
    assert s.schools == Counts(deactivated=1, unchanged=1)
    assert (s.districts_updated, s.districts_unchanged, s.phone_numbers_added) == (0, 1, 2)

    second = contacts_by_name(db)
    later = START + timedelta(days=30)
    cy = second["Cy Diaz"]
    assert cy.id == first["Cy Diaz"].id and cy.priority == 3 and cy.updated_at == later
    assert second["bo park"].id == first["Bo Park"].id and second["bo park"].sms is False
    di = second["Di Wu"]
    assert (di.id, di.active, di.deactivated_at) == (first["Di Wu"].id, False, later)
    assert second["Eve Stone"].active and second["Eve Stone"].created_at == later
    unchanged = second["Ann Lee"]
    assert unchanged.updated_at == START and unchanged.active
    with db.session() as session:
        middle = session.get(School, schools["102"])
        assert middle is not None and middle.active is False and middle.updated_at == later

    # The original file again: Di Wu and her school come back as the same rows.
    clock.advance(timedelta(days=30))
    result = _ok(import_directory(db, clock, to_csv(base_rows())))
    s = result.summary
    assert s is not None
    assert s.contacts == Counts(updated=2, deactivated=1, reactivated=1, unchanged=2)
    assert (s.schools.reactivated, s.schools.deactivated) == (1, 0)
    third = contacts_by_name(db)
    assert third["Di Wu"].id == first["Di Wu"].id
    assert third["Di Wu"].active and third["Di Wu"].deactivated_at is None
    assert third["Eve Stone"].active is False
    assert third["Eve Stone"].deactivated_at == START + timedelta(days=60)
    with db.session() as session:
        assert session.get(School, schools["102"]).active is True  # type: ignore[union-attr]
        # History keeps everyone: nothing was ever deleted.
        assert session.scalar(select(func.count()).select_from(Contact)) == 6

    # And a third time: nothing to do.
    result = _ok(import_directory(db, clock, to_csv(base_rows())))
    assert result.summary is not None and not result.summary.changed


def test_district_settings_change_and_other_districts_are_untouched(
    db: Database, clock: ManualClock
) -> None:
    _ok(import_directory(db, clock, sample_directory()))
    foothills_before = _district_state(db, "foothills")
    clock.advance(timedelta(hours=1))
    lakeview = [
        r for r in csv.DictReader(io.StringIO(export(db))) if r["district_code"] == "lakeview"
    ]
    for r in lakeview:
        r.update(district_name="Lakeview Community Schools", district_holidays="US")
    lakeview = [r for r in lakeview if r["role"] != "pio"]
    result = _ok(import_directory(db, clock, to_csv(lakeview)))
    s = result.summary
    assert s is not None
    assert (s.districts_updated, s.districts_unchanged, s.contacts.deactivated) == (1, 0, 1)
    with db.session() as session:
        district = session.scalar(select(District).where(District.code == "lakeview"))
        assert district is not None
        assert (district.name, district.holiday_region) == ("Lakeview Community Schools", "US")
        assert district.updated_at == START + timedelta(hours=1)
    assert _district_state(db, "foothills") == foothills_before
    assert not s.duty_in_file and s.duty == Counts()
    assert [c.updated_at for c in duty_contacts(db)] == [START, START]


def _district_state(db: Database, code: str) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        district_id = conn.execute(
            text("SELECT id FROM districts WHERE code = :c"), {"c": code}
        ).scalar_one()
        state = [
            tuple(
                conn.execute(
                    text("SELECT * FROM districts WHERE id = :i"), {"i": district_id}
                ).one()
            )
        ]
        for table in ("schools", "contacts"):
            state += [
                tuple(r)
                for r in conn.execute(
                    text(f"SELECT * FROM {table} WHERE district_id = :i ORDER BY id"),
                    {"i": district_id},
                )
            ]
        return state


def test_dry_run_reports_and_changes_nothing(db: Database, clock: ManualClock) -> None:
    before = snapshot(db)
    result = _ok(import_directory(db, clock, sample_directory(), dry_run=True))
    assert result.dry_run and result.summary is not None
    assert (result.summary.contacts.added, result.summary.duty.added) == (30, 2)
    assert snapshot(db) == before


def test_dry_run_reports_duty_changes(db: Database, clock: ManualClock) -> None:
    _ok(import_directory(db, clock, to_csv([*base_rows(), *duty_rows()])))
    before = snapshot(db)
    changed = [
        duty_row("Zoe Hart", "+1 312 555 0158"),
        duty_row("Xi Chen", "+1 312 555 0152", priority="2"),
    ]
    result = _ok(import_directory(db, clock, to_csv(changed), dry_run=True))
    assert result.summary is not None
    assert result.summary.duty == Counts(added=1, updated=1, deactivated=1)
    assert result.summary.contacts == Counts()
    assert result.summary.phone_numbers_added == 2
    assert "duty contacts: 1 added, 1 updated, 0 reactivated, 1 deactivated, 0 unchanged" in (
        result.summary.lines()
    )
    assert result.summary.changed
    assert snapshot(db) == before


# The duty line --------------------------------------------------------------------------------


def test_duty_rows_import_outside_any_district(db: Database, clock: ManualClock) -> None:
    result = _ok(import_directory(db, clock, to_csv([*base_rows(), *duty_rows()])))
    assert result.summary is not None
    assert result.summary.duty_in_file
    assert result.summary.duty == Counts(added=2)
    assert result.summary.contacts == Counts(added=5)
    assert result.summary.districts_added == 1
    duty = duty_contacts(db)
    assert [
        (c.name, c.priority, c.district_id, c.school_id, c.sms, c.email, c.extension, c.created_at)
        for c in duty
    ] == [
        ("Zoe Hart", 1, None, None, True, "zoe.hart@hotline.example.org", None, START),
        ("Yan Li", 2, None, None, False, "yan.li@hotline.example.org", None, START),
    ]
    with db.session() as session:
        numbers = [session.get_one(PhoneNumber, c.phone_number_id).e164 for c in duty]
        assert numbers == ["+13125550150", "+13125550151"]
        # Every other contact still belongs to a district.
        assert session.scalar(
            select(func.count()).select_from(Contact).where(Contact.district_id.is_(None))
        ) == len(duty)


def test_a_file_may_hold_only_duty_rows(db: Database, clock: ManualClock) -> None:
    rows = [duty_row("Zoe Hart", "+1 312 555 0150 ext. 7"), duty_rows()[1]]
    result = _ok(import_directory(db, clock, to_csv(rows)))
    assert result.summary is not None
    assert (result.summary.districts_added, result.summary.schools.added) == (0, 0)
    assert result.summary.duty == Counts(added=2)
    assert [(c.name, c.extension) for c in duty_contacts(db)] == [
        ("Zoe Hart", "7"),
        ("Yan Li", None),
    ]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(District)) == 0


def test_reimport_updates_and_deactivates_duty_contacts(db: Database, clock: ManualClock) -> None:
    _ok(import_directory(db, clock, to_csv([*base_rows(), *duty_rows()])))
    first = {c.name: c for c in duty_contacts(db)}
    district_rows_before = _district_state(db, "north")

    clock.advance(timedelta(days=7))
    later = START + timedelta(days=7)
    changed = [
        # Same person (case and spacing ignored): new number, priority, e-mail and sms.
        duty_row("zoe  hart", "+1 312 555 0159", priority="2", sms="no", email="zh@hotline.org"),
        duty_row("Xi Chen", "+1 312 555 0152"),  # new; Yan Li is gone
    ]
    result = _ok(import_directory(db, clock, to_csv(changed)))
    assert result.summary is not None
    assert result.summary.duty == Counts(added=1, updated=1, deactivated=1)
    assert result.summary.contacts == Counts()
    assert _district_state(db, "north") == district_rows_before  # districts not in the file
    now_on_duty = duty_contacts(db)
    assert [(c.name, c.priority) for c in now_on_duty] == [("Xi Chen", 1), ("zoe  hart", 2)]
    zoe = now_on_duty[1]
    assert (zoe.id, zoe.sms, zoe.email, zoe.updated_at) == (
        first["Zoe Hart"].id,
        False,
        "zh@hotline.org",
        later,
    )
    with db.session() as session:
        assert session.get_one(PhoneNumber, zoe.phone_number_id).e164 == "+13125550159"
        yan = session.get_one(Contact, first["Yan Li"].id)  # deactivated, never deleted
        assert (yan.active, yan.deactivated_at, yan.district_id) == (False, later, None)

    # The first duty rows again: Yan Li comes back as the same contact, Xi Chen goes.
    clock.advance(timedelta(days=7))
    result = _ok(import_directory(db, clock, to_csv(duty_rows())))
    assert result.summary is not None
    assert result.summary.duty == Counts(updated=1, reactivated=1, deactivated=1)
    assert [c.id for c in duty_contacts(db)] == [first["Zoe Hart"].id, first["Yan Li"].id]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 5 + 3

    result = _ok(import_directory(db, clock, to_csv(duty_rows())))
    assert result.summary is not None and not result.summary.changed
    assert result.summary.duty == Counts(unchanged=2)


def test_a_file_without_duty_rows_leaves_the_duty_line_alone(
    db: Database, clock: ManualClock
) -> None:
    _ok(import_directory(db, clock, sample_directory()))
    on_duty = [(c.id, c.name, c.updated_at) for c in duty_contacts(db)]
    assert len(on_duty) == 2
    clock.advance(timedelta(days=1))
    result = _ok(import_directory(db, clock, to_csv(base_rows())))
    assert result.summary is not None
    assert (result.summary.duty_in_file, result.summary.duty) == (False, Counts())
    assert "duty contacts: no duty rows in the file, left as they are" in result.summary.lines()
    assert [(c.id, c.name, c.updated_at) for c in duty_contacts(db)] == on_duty


def test_duty_rows_share_phone_numbers_with_other_contacts(
    db: Database, clock: ManualClock
) -> None:
    # The district contact Ann Lee is also on the duty line, on the same number.
    rows = [*base_rows(), duty_row("Ann Lee", "+1 (312) 555-0101")]
    result = _ok(import_directory(db, clock, to_csv(rows)))
    assert result.summary is not None and result.summary.phone_numbers_added == 5
    with db.session() as session:
        ann = session.scalars(
            select(Contact).where(Contact.name == "Ann Lee").order_by(Contact.id)
        ).all()
        assert [c.role for c in ann] == [ContactRole.DISTRICT_CONTACT, ContactRole.DUTY]
        assert ann[0].phone_number_id == ann[1].phone_number_id
        assert session.scalar(select(func.count()).select_from(PhoneNumber)) == 5


# File format tolerance -------------------------------------------------------------------------


def test_bom_whitespace_blank_lines_and_line_numbers() -> None:
    body = to_csv(base_rows())
    lines = body.splitlines()
    padded = ["  " + " , ".join(c for c in lines[0].split(",")) + "  "]
    padded += [" , ".join(line.split(",")) for line in lines[1:]]
    data = ("\ufeff" + "\n\n".join(padded) + "\n\n\n").encode("utf-8")
    result = parse_directory(data)
    assert result.problems == []
    assert result.directory is not None
    assert [c.line for c in result.directory.contacts] == [3, 5, 7, 9, 11]
    assert result.directory.contacts[2].name == "Bo Park"


def test_line_numbers_count_physical_lines_of_quoted_values() -> None:
    rows = base_rows()
    rows[1]["name"] = "North Dispatch\n(admin line)"  # line 3 spans lines 3 and 4
    rows[3]["priority"] = "zero"  # the fifth row starts on line 6
    result = parse_directory(to_csv(rows))
    assert [(p.line, p.message.split(" ")[0]) for p in result.problems] == [(6, "priority")]


def test_crlf_and_header_case_are_accepted() -> None:
    data = to_csv(base_rows()).replace("\n", "\r\n").replace("district_code", "District_Code", 1)
    assert parse_directory(data).problems == []


# Export ---------------------------------------------------------------------------------------


def test_export_round_trips(db: Database, clock: ManualClock) -> None:
    _ok(import_directory(db, clock, sample_directory()))
    exported = export(db)
    clock.advance(timedelta(days=1))
    before = snapshot(db)
    result = _ok(import_directory(db, clock, exported))
    assert result.summary is not None and not result.summary.changed
    assert (result.summary.contacts.unchanged, result.summary.duty.unchanged) == (30, 2)
    assert snapshot(db) == before
    assert export(db) == exported

    # The export says what the sample says (in E.164, in a stable order).
    def entries(data: str | bytes) -> set[tuple[Any, ...]]:
        directory = parse_directory(data).directory
        assert directory is not None
        return {
            (
                c.district_code,
                c.school_code,
                c.role,
                c.priority,
                c.name,
                c.e164,
                c.extension,
                c.sms,
                c.email,
            )
            for c in directory.contacts
        }

    assert entries(exported) == entries(sample_directory())
    assert exported.splitlines()[0] == ",".join(COLUMNS)
    # The duty rows come last, their district and school columns empty.
    duty = [r for r in csv.DictReader(io.StringIO(exported)) if r["role"] == "duty"]
    assert len(duty) == 2 and exported.splitlines()[-2:] == [
        ",".join(r[c] for c in COLUMNS) for r in duty
    ]
    assert all(r[c] == "" for r in duty for c in DUTY_EMPTY)
    assert [r["priority"] for r in duty] == ["1", "2"]


def test_export_round_trips_duty_rows(db: Database, clock: ManualClock) -> None:
    rows = [
        *base_rows(),
        duty_row("Zoe Hart", "+1 312 555 0150 ext. 7"),
        duty_row("Ann Lee", "+1 (312) 555-0101", priority="3"),  # shares a district number
        duty_row("Yan Li", "+1 (312) 555-0151", priority="2", sms="no"),
    ]
    _ok(import_directory(db, clock, to_csv(rows)))
    exported = export(db)
    assert [line.split(",")[7] for line in exported.splitlines()[-3:]] == [
        "Zoe Hart",
        "Yan Li",
        "Ann Lee",
    ]
    assert (
        exported.splitlines()[-3]
        == ",,,,,duty,1,Zoe Hart,+13125550150,yes,zoe.hart@hotline.example.org,,7"
    )
    clock.advance(timedelta(days=1))
    before = snapshot(db)
    result = _ok(import_directory(db, clock, exported))
    assert result.summary is not None and not result.summary.changed
    assert result.summary.duty == Counts(unchanged=3)
    assert snapshot(db) == before
    assert export(db) == exported
    # A duty-only export (a hotline without districts yet) goes back in unchanged too.
    _ok(import_directory(db, clock, to_csv(duty_rows())))
    exported = export(db)
    result = _ok(import_directory(db, clock, exported))
    assert result.summary is not None and not result.summary.changed


def test_export_leaves_out_what_is_deactivated(db: Database, clock: ManualClock) -> None:
    _ok(import_directory(db, clock, to_csv(base_rows())))
    _ok(import_directory(db, clock, to_csv(base_rows()[:4])))  # without Di Wu and school 102
    exported = export(db)
    assert "Di Wu" not in exported and "North Middle" not in exported
    assert len(exported.splitlines()) == 5
    # District rows first, then schools by code; roles in escalation order.
    names = [r["name"] for r in csv.DictReader(io.StringIO(exported))]
    assert names == ["Ann Lee", "North Dispatch", "Bo Park", "Cy Diaz"]
    # A duty contact no longer on the duty line is left out too.
    _ok(import_directory(db, clock, to_csv(duty_rows())))
    _ok(import_directory(db, clock, to_csv(duty_rows()[1:])))
    names = [r["name"] for r in csv.DictReader(io.StringIO(export(db)))]
    assert names == ["Ann Lee", "North Dispatch", "Bo Park", "Cy Diaz", "Yan Li"]


# CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def app(db: Database, clock: ManualClock, tmp_path: Path) -> Iterator[Any]:
    """The real application (``hotline.create_app``) on the test database, with a recording fake
    phone network."""
    from cryptography.fernet import Fernet

    from hotline import create_app
    from hotline.config import load_settings
    from hotline.services import hotline
    from hotline.telephony.fake import FakeTelephony

    url = db.engine.url.render_as_string(hide_password=False)
    environ = {"DATABASE_URL": url}
    if db.engine.dialect.name == "postgresql":
        # PostgreSQL looks like production to the settings: say it is a training install.
        environ.update(
            HOTLINE_SIMULATE="1",
            SECRET_KEY="directory-tests-" + "x" * 32,
            HOTLINE_IDENTITY_KEY=Fernet.generate_key().decode(),
        )
    settings = load_settings(environ, instance_path=tmp_path / "instance")
    application = create_app(settings, clock=clock, telephony=FakeTelephony())
    yield application
    hotline(application).db.dispose()


def test_cli_import_and_export(app: Any, db: Database, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    sample = tmp_path / "directory.csv"
    sample.write_bytes(sample_directory())

    result = runner.invoke(args=["directory", "import", str(sample)])
    assert result.exit_code == 0, result.output + result.stderr
    assert "districts: 2 added, 0 updated, 0 unchanged" in result.stdout
    assert "contacts: 30 added" in result.stdout
    assert "duty contacts: 2 added" in result.stdout

    result = runner.invoke(args=["directory", "export"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == export(db)
    assert "exported 32 contact rows" in result.stderr

    out = tmp_path / "export.csv"
    result = runner.invoke(args=["directory", "export", str(out)])
    assert result.exit_code == 0, result.stderr
    assert out.read_text(encoding="utf-8") == export(db)

    result = runner.invoke(args=["directory", "import", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "the directory already matches the file" in result.stdout

    result = runner.invoke(
        args=["directory", "import", "--dry-run", "-"], input=to_csv(base_rows())
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("dry run: nothing was changed")
    assert "duty contacts: no duty rows in the file, left as they are" in result.stdout
    with db.session() as session:
        assert session.scalar(select(District).where(District.code == "north")) is None


def test_cli_import_reports_every_problem_and_exits_1(
    app: Any, db: Database, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    rows = base_rows()
    rows[1]["phone"] = "911"
    rows[3]["email"] = "cy@"
    bad.write_text(to_csv(rows), encoding="utf-8")
    before = snapshot(db)
    result = app.test_cli_runner().invoke(args=["directory", "import", str(bad)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("line 3: phone '911' is an emergency number")
    assert lines[1].startswith("line 5: email 'cy@' is not an e-mail address")
    assert lines[2] == f"{bad}: 2 problems; nothing was changed"
    assert result.stdout == ""
    assert snapshot(db) == before
