"""Schema through Alembic on SQLite and the real PostgreSQL: upgrade, downgrade, time, timeline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from hotline import migrate
from hotline.core import timeline
from hotline.core.identity import IdentityKeyring
from hotline.core.reporters import find_or_create_reporter
from hotline.core.tips import create_tip
from hotline.db import Database
from hotline.models import (
    ActorType,
    AppendOnlyError,
    Call,
    CallDirection,
    Channel,
    Contact,
    ContactRole,
    District,
    PhoneNumber,
    Recording,
    School,
    Tip,
    TipEvent,
    TipEventKind,
    TipLevel,
    TipStatus,
)

KEYRING = IdentityKeyring(b"k" * 32)
T0 = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)

TABLES = {
    "districts",
    "schools",
    "contacts",
    "phone_numbers",
    "tips",
    "tip_events",
    "calls",
    "recordings",
    "reporters",
    "webhook_receipts",
    "heartbeats",
}


def migrated(url: str) -> Database:
    db = Database(url)
    migrate.upgrade(db.engine)
    return db


def test_upgrade_from_empty_and_downgrade_to_empty(database_url: str) -> None:
    engine = create_engine(database_url)
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.is_current(engine)
    assert TABLES <= set(inspect(engine).get_table_names())
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)  # and up again, cleanly
    assert migrate.is_current(engine)
    engine.dispose()


def test_models_match_the_migrations(database_url: str) -> None:
    """Autogenerate against the migrated schema finds nothing: models and migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hotline.models import Base

    db = migrated(database_url)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    db.dispose()


def seed_directory(db: Database) -> int:
    with db.session() as s:
        d = District(
            code="LV",
            name="Lakeview",
            timezone="America/Chicago",
            holiday_region="US-IL",
            created_at=T0,
            updated_at=T0,
        )
        school = School(district=d, code="1001", name="Bravo Middle", created_at=T0, updated_at=T0)
        line = PhoneNumber(e164="+13125550111", created_at=T0)
        s.add_all(
            [
                Contact(
                    district=d,
                    school=school,
                    role=ContactRole.SCHOOL_CONTACT,
                    priority=1,
                    name="Principal",
                    phone_number=line,
                    created_at=T0,
                    updated_at=T0,
                ),
                Contact(
                    district=d,
                    school=None,
                    role=ContactRole.PSAP,
                    priority=1,
                    name="PSAP",
                    phone_number=PhoneNumber(e164="+13125550911", created_at=T0),
                    created_at=T0,
                    updated_at=T0,
                ),
            ]
        )
        s.flush()
        return school.id


def test_directory_defaults_and_relations(database_url: str) -> None:
    db = migrated(database_url)
    seed_directory(db)
    with db.session() as s:
        d = s.scalars(select(District)).one()
        assert d.escalation_style.value == "sequential"
        assert d.business_hours["mon"] == [["07:00", "17:00"]]
        assert "sat" not in d.business_hours
        assert 0 < d.sequential_wait_seconds * 5 < 20 * 60
        assert {c.role for c in d.contacts} == {ContactRole.SCHOOL_CONTACT, ContactRole.PSAP}
    db.dispose()


def test_phone_number_is_unique(database_url: str) -> None:
    db = migrated(database_url)
    with pytest.raises(IntegrityError), db.session() as s:
        s.add_all(
            [
                PhoneNumber(e164="+13125550111", created_at=T0),
                PhoneNumber(e164="+13125550111", created_at=T0),
            ]
        )
    db.dispose()


def test_times_come_back_aware_utc(database_url: str) -> None:
    db = migrated(database_url)
    school_id = seed_directory(db)
    chicago = timezone(timedelta(hours=-6))
    local = datetime(2026, 3, 8, 1, 59, 30, 123456, tzinfo=chicago)
    with db.session() as s:
        tip = create_tip(
            s,
            KEYRING,
            channel=Channel.VOICE,
            level=TipLevel.CRITICAL,
            received_at=local,
            school=s.get(School, school_id),
        ).tip
        tip_id = tip.id
    with db.session() as s:
        tip = s.get_one(Tip, tip_id)
        assert tip.received_at.tzinfo is not None
        assert tip.received_at.utcoffset() == timedelta(0)
        assert tip.received_at == local
        # Comparisons in SQL agree with Python's (stored in UTC on both backends).
        later = s.scalars(select(Tip).where(Tip.received_at > local - timedelta(seconds=1))).all()
        assert [t.id for t in later] == [tip_id]
    db.dispose()


def flush_in_a_session(db: Database, change: Callable[[Session], object]) -> None:
    """Make ``change`` in a session of its own and flush it (what the test expects to fail)."""
    with db.session() as s:
        change(s)
        s.flush()


def test_naive_datetimes_are_refused(database_url: str) -> None:
    db = migrated(database_url)
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 (naive on purpose)
    with pytest.raises(Exception, match="naive"):
        flush_in_a_session(db, lambda s: s.add(PhoneNumber(e164="+13125550111", created_at=naive)))
    db.dispose()


def test_tip_report_number_pin_and_timeline(database_url: str) -> None:
    db = migrated(database_url)
    school_id = seed_directory(db)
    with db.session() as s:
        reporter = find_or_create_reporter(s, KEYRING, "+14155550123", T0)
        new = create_tip(
            s,
            KEYRING,
            channel=Channel.SMS,
            level=TipLevel.STANDARD,
            received_at=T0,
            school=s.get(School, school_id),
            reporter=reporter,
            language="es",
            category="bullying",
        )
        tip = new.tip
        assert 6 <= len(tip.report_number) <= 8
        assert tip.report_number.isdigit()
        assert 4 <= len(new.pin) <= 6
        assert new.pin.isdigit()
        assert new.pin not in tip.pin_hash
        assert KEYRING.check_pin(tip.report_number, new.pin, tip.pin_hash, tip.pin_key_id)
        timeline.record(
            s, tip, TipEventKind.TIP_OPENED, at=T0 + timedelta(minutes=1), text="checked"
        )
        tip_id = tip.id
    with db.session() as s:
        tip = s.get_one(Tip, tip_id)
        assert tip.status is TipStatus.INTAKE
        assert tip.language == "es"
        assert [(e.kind, e.actor_type) for e in tip.events] == [
            (TipEventKind.TIP_RECEIVED, ActorType.REPORTER),
            (TipEventKind.TIP_OPENED, ActorType.SYSTEM),
        ]
        assert tip.events[1].data == {"text": "checked"}
    db.dispose()


def test_timeline_is_append_only(database_url: str) -> None:
    db = migrated(database_url)
    with db.session() as s:
        tip = create_tip(
            s, KEYRING, channel=Channel.VOICE, level=TipLevel.OTHER, received_at=T0
        ).tip
        tip_id = tip.id

    # Through the ORM: refused before it reaches the database.
    def edit(s: Session) -> None:
        s.scalars(select(TipEvent)).first().kind = "edited"  # type: ignore[union-attr]

    with pytest.raises(AppendOnlyError):
        flush_in_a_session(db, edit)
    with pytest.raises(AppendOnlyError):
        flush_in_a_session(db, lambda s: s.delete(s.scalars(select(TipEvent)).first()))
    # Around the ORM: the database's triggers refuse it.
    for statement in ("UPDATE tip_events SET kind = 'edited'", "DELETE FROM tip_events"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement))
    with db.session() as s:
        assert [e.kind for e in s.get_one(Tip, tip_id).events] == ["tip.received"]
    db.dispose()


def test_calls_and_recordings(database_url: str) -> None:
    db = migrated(database_url)
    with db.session() as s:
        tip = create_tip(
            s, KEYRING, channel=Channel.VOICE, level=TipLevel.CRITICAL, received_at=T0
        ).tip
        call = Call(
            sid="CA" + "a" * 32,
            direction=CallDirection.INBOUND,
            tip=tip,
            status="in-progress",
            created_at=T0,
            flow_state={"step": "menu"},
        )
        s.add(call)
        s.flush()
        s.add(
            Recording(
                sid="RE" + "b" * 32,
                call_id=call.id,
                tip_id=tip.id,
                url="https://api.twilio.com/x",
                status="completed",
                content=b"\x00\x01",
                created_at=T0,
                updated_at=T0,
            )
        )
    with db.session() as s:
        rec = s.scalars(select(Recording)).one()
        assert rec.content == b"\x00\x01"
        assert rec.tip is not None
        assert s.scalars(select(Call)).one().flow_state == {"step": "menu"}
    db.dispose()
