"""Directory import and export against a database, on SQLite and on the real PostgreSQL. The
parser's own cases, which need no database, are in ``test_directory_parse.py``.

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
from tests.support.directory_files import (
    BAD_FILES,
    DUTY_EMPTY,
    base_rows,
    duty_row,
    duty_rows,
    row,
    school_row,
    to_csv,
)
from tests.support.directory_files import with_row as _with
from tests.support.services import throwaway_postgres_database

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
        assert psap is not None
        assert psap.bad_for_sms is True
        users = session.scalars(select(Contact).where(Contact.phone_number_id == psap.id)).all()
        assert len(users) == 3
        assert {c.school_id for c in users}.isdisjoint({None})
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
    assert cy.id == first["Cy Diaz"].id
    assert cy.priority == 3
    assert cy.updated_at == later
    assert second["bo park"].id == first["Bo Park"].id
    assert second["bo park"].sms is False
    di = second["Di Wu"]
    assert (di.id, di.active, di.deactivated_at) == (first["Di Wu"].id, False, later)
    assert second["Eve Stone"].active
    assert second["Eve Stone"].created_at == later
    unchanged = second["Ann Lee"]
    assert unchanged.updated_at == START
    assert unchanged.active
    with db.session() as session:
        middle = session.get(School, schools["102"])
        assert middle is not None
        assert middle.active is False
        assert middle.updated_at == later

    # The original file again: Di Wu and her school come back as the same rows.
    clock.advance(timedelta(days=30))
    result = _ok(import_directory(db, clock, to_csv(base_rows())))
    s = result.summary
    assert s is not None
    assert s.contacts == Counts(updated=2, deactivated=1, reactivated=1, unchanged=2)
    assert (s.schools.reactivated, s.schools.deactivated) == (1, 0)
    third = contacts_by_name(db)
    assert third["Di Wu"].id == first["Di Wu"].id
    assert third["Di Wu"].active
    assert third["Di Wu"].deactivated_at is None
    assert third["Eve Stone"].active is False
    assert third["Eve Stone"].deactivated_at == START + timedelta(days=60)
    with db.session() as session:
        assert session.get(School, schools["102"]).active is True  # type: ignore[union-attr]
        # History keeps everyone: nothing was ever deleted.
        assert session.scalar(select(func.count()).select_from(Contact)) == 6

    # And a third time: nothing to do.
    result = _ok(import_directory(db, clock, to_csv(base_rows())))
    assert result.summary is not None
    assert not result.summary.changed


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
    assert not s.duty_in_file
    assert s.duty == Counts()
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
    assert result.dry_run
    assert result.summary is not None
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
    assert result.summary is not None
    assert not result.summary.changed
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
    assert result.summary is not None
    assert result.summary.phone_numbers_added == 5
    with db.session() as session:
        ann = session.scalars(
            select(Contact).where(Contact.name == "Ann Lee").order_by(Contact.id)
        ).all()
        assert [c.role for c in ann] == [ContactRole.DISTRICT_CONTACT, ContactRole.DUTY]
        assert ann[0].phone_number_id == ann[1].phone_number_id
        assert session.scalar(select(func.count()).select_from(PhoneNumber)) == 5


# Export ---------------------------------------------------------------------------------------


def test_export_round_trips(db: Database, clock: ManualClock) -> None:
    _ok(import_directory(db, clock, sample_directory()))
    exported = export(db)
    clock.advance(timedelta(days=1))
    before = snapshot(db)
    result = _ok(import_directory(db, clock, exported))
    assert result.summary is not None
    assert not result.summary.changed
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
    assert len(duty) == 2
    assert exported.splitlines()[-2:] == [",".join(r[c] for c in COLUMNS) for r in duty]
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
        == ",,,,,duty,1,Zoe Hart,+13125550150,yes,zoe.hart@hotline.example.org,,7,"
    )
    clock.advance(timedelta(days=1))
    before = snapshot(db)
    result = _ok(import_directory(db, clock, exported))
    assert result.summary is not None
    assert not result.summary.changed
    assert result.summary.duty == Counts(unchanged=3)
    assert snapshot(db) == before
    assert export(db) == exported
    # A duty-only export (a hotline without districts yet) goes back in unchanged too.
    _ok(import_directory(db, clock, to_csv(duty_rows())))
    exported = export(db)
    result = _ok(import_directory(db, clock, exported))
    assert result.summary is not None
    assert not result.summary.changed


def test_export_leaves_out_what_is_deactivated(db: Database, clock: ManualClock) -> None:
    _ok(import_directory(db, clock, to_csv(base_rows())))
    _ok(import_directory(db, clock, to_csv(base_rows()[:4])))  # without Di Wu and school 102
    exported = export(db)
    assert "Di Wu" not in exported
    assert "North Middle" not in exported
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
