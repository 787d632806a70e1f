"""The typed vocabularies (timeline kinds, outbox outcomes, alert kinds) and migration 0006, on
SQLite and the real PostgreSQL: rows made before it survive it both ways, the database refuses
what no member says, and a stored value outside a vocabulary stops the upgrade by name. And
what the provider says of a text becomes a member, or nothing."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from hotline import migrate
from hotline.core import timeline
from hotline.core.identity import IdentityKeyring
from hotline.core.tips import create_tip
from hotline.db import Database
from hotline.models import (
    Alert,
    AlertKind,
    Channel,
    IntakeStep,
    MediaState,
    MediaStoreKind,
    Notification,
    NotificationChannel,
    NotificationOutcome,
    NotificationPurpose,
    NotificationState,
    TipEvent,
    TipEventKind,
    TipLevel,
    UTCDateTime,
)
from hotline.services import hotline
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.dispatch_world import World
from tests.support.twilio_driver import TwilioDriver

KEYRING = IdentityKeyring(b"k" * 32)
T0 = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
BEFORE = "0005"


def migration(revision: str) -> ModuleType:
    script = ScriptDirectory.from_config(migrate.alembic_config_for_scripts()).get_revision(
        revision
    )
    assert script is not None
    return script.module


def migration_0006() -> ModuleType:
    return migration("0006")


def values(vocabulary: type[enum.StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in vocabulary)


def test_the_migrations_check_exactly_the_members() -> None:
    """The latest migration that lists a vocabulary lists the enum as it is: a member added
    since needs a new migration of its check constraint (and this test then compares against
    that migration's lists)."""
    assert migrate.head_revision() == "0010"  # 0010 adds a column, no vocabulary
    assert migration("0009").TIP_EVENT_KINDS == values(TipEventKind)
    assert migration("0009").ALERT_KINDS == values(AlertKind)
    assert migration("0009").MEDIA_STATES == values(MediaState)
    assert migration("0009").MEDIA_STORES == values(MediaStoreKind)
    assert migration("0008").NOTIFICATION_PURPOSES == values(NotificationPurpose)
    assert migration("0007").INTAKE_STEPS == values(IntakeStep)
    assert migration("0006").NOTIFICATION_OUTCOMES == values(NotificationOutcome)


def insert_event(conn: Connection, tip_id: int, kind: str) -> None:
    """A timeline entry written around the ORM (which would refuse a non-member itself)."""
    row = sa.table(
        "tip_events",
        sa.column("tip_id"),
        sa.column("at", UTCDateTime()),
        sa.column("kind"),
        sa.column("actor_type"),
        sa.column("data", sa.JSON()),
    )
    conn.execute(
        sa.insert(row).values(tip_id=tip_id, at=T0, kind=kind, actor_type="system", data={})
    )


def set_raw(conn: Connection, table: str, column: str, row_id: int, value: str) -> None:
    rows = sa.table(table, sa.column("id"), sa.column(column))
    conn.execute(sa.update(rows).where(rows.c.id == row_id).values({column: value}))


def seed(db: Database) -> dict[str, int]:
    """A tip with a timeline, an outbox row with an outcome and one without, and an alert."""
    with db.session() as s:
        tip = create_tip(
            s, KEYRING, channel=Channel.VOICE, level=TipLevel.CRITICAL, received_at=T0
        ).tip
        timeline.record(s, tip, TipEventKind.TIP_OPENED, at=T0 + timedelta(seconds=1))
        timeline.record(
            s, tip, TipEventKind.NOTIFICATION_CALL_ENDED, at=T0 + timedelta(seconds=2), n=1
        )

        def row(outcome: NotificationOutcome | None) -> Notification:
            return Notification(
                tip_id=tip.id,
                purpose=NotificationPurpose.ALERT,
                channel=NotificationChannel.VOICE,
                level=TipLevel.CRITICAL,
                state=NotificationState.PLANNED,
                due_at=T0,
                deadline_at=T0 + timedelta(minutes=20),
                outcome=outcome,
                created_at=T0,
                updated_at=T0,
            )

        answered, pending = row(NotificationOutcome.NO_ANSWER), row(None)
        alert = Alert(
            tip_id=tip.id,
            kind=AlertKind.PLAN_FAILED,
            message="m",
            dedupe_key="plan-failed:1",
            created_at=T0,
        )
        s.add_all([answered, pending, alert])
        s.flush()
        return {"tip": tip.id, "answered": answered.id, "pending": pending.id, "alert": alert.id}


def seed_then_downgrade(db: Database, revision: str) -> dict[str, int]:
    """:func:`seed` at the head (the models are the head's), then the schema taken down to
    ``revision`` with the rows in it."""
    migrate.upgrade(db.engine)
    ids = seed(db)
    migrate.downgrade(db.engine, revision)
    return ids


def stored(db: Database, ids: dict[str, int]) -> dict[str, Any]:
    """What the seeded rows hold, read without the models (the schema may be an older one)."""
    with db.engine.connect() as conn:
        events = conn.execute(
            sa.text("SELECT kind FROM tip_events WHERE tip_id = :t ORDER BY id"), {"t": ids["tip"]}
        ).scalars()

        def outcome(row_id: int) -> NotificationOutcome | None:
            value = conn.execute(
                sa.text("SELECT outcome FROM notifications WHERE id = :i"), {"i": row_id}
            ).scalar()
            return None if value is None else NotificationOutcome(value)

        alert = conn.execute(
            sa.text("SELECT kind FROM alerts WHERE id = :i"), {"i": ids["alert"]}
        ).scalar_one()
        return {
            "events": [TipEventKind(e) for e in events],
            "outcomes": (outcome(ids["answered"]), outcome(ids["pending"])),
            "alert": AlertKind(alert),
        }


def test_0006_keeps_the_rows_and_checks_them_up_and_down(database_url: str) -> None:
    db = Database(database_url)
    ids = seed_then_downgrade(db, BEFORE)
    before = stored(db, ids)
    assert before == {
        "events": [
            TipEventKind.TIP_RECEIVED,
            TipEventKind.TIP_OPENED,
            TipEventKind.NOTIFICATION_CALL_ENDED,
        ],
        "outcomes": (NotificationOutcome.NO_ANSWER, None),
        "alert": AlertKind.PLAN_FAILED,
    }

    migrate.upgrade(db.engine)
    assert migrate.is_current(db.engine)
    assert stored(db, ids) == before
    # The database itself now refuses what no member says, each column by its constraint...
    refusals: dict[str, Callable[[Connection], None]] = {
        "ck_tip_events_tip_event_kind": lambda conn: insert_event(conn, ids["tip"], "tip.edited"),
        "ck_notifications_notification_outcome": lambda conn: set_raw(
            conn, "notifications", "outcome", ids["pending"], "answered"
        ),
        "ck_alerts_alert_kind": lambda conn: set_raw(
            conn, "alerts", "kind", ids["alert"], "something_odd"
        ),
    }
    for constraint, refused in refusals.items():
        with pytest.raises(IntegrityError, match=constraint), db.engine.begin() as conn:
            refused(conn)
    # ...and the rebuilt timeline is still append-only.
    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM tip_events"))

    migrate.downgrade(db.engine, BEFORE)
    assert migrate.current_revision(db.engine) == BEFORE
    assert stored(db, ids) == before
    with db.engine.begin() as conn:  # free strings again
        for accepted in refusals.values():
            accepted(conn)
    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE tip_events SET kind = 'tip.opened'"))
    db.dispose()


def test_0006_refuses_values_outside_the_vocabularies_and_changes_nothing(
    database_url: str,
) -> None:
    db = Database(database_url)
    ids = seed_then_downgrade(db, BEFORE)
    with db.engine.begin() as conn:
        insert_event(conn, ids["tip"], "note")
        insert_event(conn, ids["tip"], "note")
        set_raw(conn, "notifications", "outcome", ids["answered"], "ringing")
        set_raw(conn, "alerts", "kind", ids["alert"], "plan-failed")

    with pytest.raises(RuntimeError) as refused:
        migrate.upgrade(db.engine)
    assert type(refused.value).__name__ == "UnknownStoredValues"
    message = str(refused.value)
    for named in (
        "tip_events.kind = 'note' (2 rows)",
        "notifications.outcome = 'ringing' (1 rows)",
        "alerts.kind = 'plan-failed' (1 rows)",
    ):
        assert named in message
    assert "changed nothing" in message

    assert migrate.current_revision(db.engine) == BEFORE
    checks = {
        c["name"]
        for t in ("tip_events", "notifications", "alerts")
        for c in sa.inspect(db.engine).get_check_constraints(t)
    }
    assert not checks & {
        "ck_tip_events_tip_event_kind",
        "ck_notifications_notification_outcome",
        "ck_alerts_alert_kind",
    }
    with db.engine.connect() as conn:
        kinds = conn.execute(
            sa.text("SELECT kind FROM tip_events WHERE tip_id = :t ORDER BY id"), {"t": ids["tip"]}
        ).scalars()
        assert list(kinds)[-2:] == ["note", "note"]
    db.dispose()


def test_every_member_is_stored_and_read_back(database_url: str) -> None:
    """The constraints the migration made and the enums agree, member by member."""
    db = Database(database_url)
    migrate.upgrade(db.engine)
    ids = seed(db)
    with db.engine.begin() as conn:
        for kind in TipEventKind:
            insert_event(conn, ids["tip"], kind.value)
    for outcome in NotificationOutcome:
        with db.engine.begin() as conn:
            set_raw(conn, "notifications", "outcome", ids["pending"], outcome.value)
        with db.session() as s:
            assert s.get_one(Notification, ids["pending"]).outcome is outcome
    for alert_kind in AlertKind:
        with db.engine.begin() as conn:
            set_raw(conn, "alerts", "kind", ids["alert"], alert_kind.value)
        with db.session() as s:
            assert s.get_one(Alert, ids["alert"]).kind is alert_kind
    with db.session() as s:
        read = s.scalars(
            sa.select(TipEvent.kind).where(TipEvent.tip_id == ids["tip"]).order_by(TipEvent.id)
        ).all()
        assert read[-len(TipEventKind) :] == list(TipEventKind)
    db.dispose()


def test_the_orm_refuses_a_word_that_is_no_member(database_url: str) -> None:
    """A literal that is no member never reaches the database (a typo in new code fails its
    first test, not a night of tips)."""
    db = Database(database_url)
    migrate.upgrade(db.engine)
    ids = seed(db)
    refused = pytest.raises(sa.exc.StatementError, match="not among the defined enum values")
    with refused, db.session() as s:
        s.get_one(Alert, ids["alert"]).kind = "plan-failed"  # type: ignore[assignment]
        s.flush()
    db.dispose()


def test_a_texts_statuses_become_members_and_an_undocumented_one_changes_nothing(
    world: World,
) -> None:
    """Twilio's MessageStatus is kept as the row's outcome, a member of the vocabulary: a final
    one is not replaced by a late callback, and a status Twilio does not document is ignored
    (logged) rather than stored or refused by the database."""
    tip_id = world.tip()
    world.run()
    delivered, failed, *_ = world.rows(tip_id, channel=NotificationChannel.SMS)
    twilio = TwilioDriver(world.app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)

    def status(row: Notification, message_status: str) -> None:
        answer = twilio.post(
            f"/twilio/alert/sms-status?n={row.id}",
            {"MessageSid": "SM" + "1" * 32, "MessageStatus": message_status, "ErrorCode": "30003"},
        )
        assert answer.status_code == 200

    def outcome(row: Notification) -> NotificationOutcome | None:
        with hotline(world.app).db.sessionmaker() as s:
            return s.get_one(Notification, row.id).outcome

    status(delivered, "sent")
    status(delivered, "something-new")
    assert outcome(delivered) is NotificationOutcome.SENT
    status(delivered, "delivered")
    status(delivered, "queued")  # late, out of order
    assert outcome(delivered) is NotificationOutcome.DELIVERED
    status(failed, "undelivered")
    assert outcome(failed) is NotificationOutcome.UNDELIVERED
    assert world.events(tip_id).count(TipEventKind.NOTIFICATION_SMS_FAILED) == 1


def test_0007_adds_the_intake_kinds_and_goes_down_only_without_them(database_url: str) -> None:
    db = Database(database_url)
    ids = seed_then_downgrade(db, "0006")
    before = stored(db, ids)
    refused = pytest.raises(IntegrityError, match="ck_tip_events_tip_event_kind")
    with refused, db.engine.begin() as conn:
        insert_event(conn, ids["tip"], TipEventKind.INTAKE_ASKED.value)

    migrate.upgrade(db.engine)
    assert stored(db, ids) == before
    with db.engine.begin() as conn:
        insert_event(conn, ids["tip"], TipEventKind.INTAKE_ASKED.value)
    migrate.downgrade(db.engine, "0007")  # one step at a time (SQLite does not roll DDL back)
    with pytest.raises(RuntimeError, match="1 rows of tip_events have kinds 0006 does not know"):
        migrate.downgrade(db.engine, "0006")
    assert migrate.current_revision(db.engine) == "0007"
    db.dispose()


def test_0008_adds_reporter_replies_and_goes_down_only_without_them(database_url: str) -> None:
    db = Database(database_url)
    ids = seed_then_downgrade(db, "0007")
    before = stored(db, ids)
    migrate.upgrade(db.engine)
    assert stored(db, ids) == before
    with db.engine.begin() as conn:
        set_raw(conn, "notifications", "purpose", ids["pending"], "reporter_reply")
    # One step at a time: a refusal must come before any schema change of that step (SQLite
    # does not roll DDL back).
    migrate.downgrade(db.engine, "0008")
    with pytest.raises(RuntimeError, match="1 rows of notifications are of the conversation"):
        migrate.downgrade(db.engine, "0007")
    with db.engine.begin() as conn:
        set_raw(conn, "notifications", "purpose", ids["pending"], "alert")
    migrate.downgrade(db.engine, "0007")
    assert stored(db, ids) == before
    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM tip_events"))


def insert_media(conn: Connection, tip_id: int, state: str = "pending") -> None:
    row = sa.table(
        "message_media",
        sa.column("tip_id"),
        sa.column("media_index"),
        sa.column("provider_url"),
        sa.column("state"),
        sa.column("attempts"),
        sa.column("delete_attempts"),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
    conn.execute(
        sa.insert(row).values(
            tip_id=tip_id,
            media_index=0,
            provider_url="https://api.twilio.com/x",
            state=state,
            attempts=0,
            delete_attempts=0,
            created_at=T0,
            updated_at=T0,
        )
    )


def test_0009_adds_the_media_tables_and_kinds_and_goes_down_only_without_them(
    database_url: str,
) -> None:
    db = Database(database_url)
    ids = seed_then_downgrade(db, "0008")
    before = stored(db, ids)
    assert "message_media" not in sa.inspect(db.engine).get_table_names()
    refused = pytest.raises(IntegrityError, match="ck_tip_events_tip_event_kind")
    with refused, db.engine.begin() as conn:
        insert_event(conn, ids["tip"], TipEventKind.MESSAGE_MEDIA_FETCHED.value)

    migrate.upgrade(db.engine, "0009")  # refusals are tried one step at a time (SQLite DDL)
    assert stored(db, ids) == before
    assert {"message_media", "media_contents"} <= set(sa.inspect(db.engine).get_table_names())
    refused = pytest.raises(IntegrityError, match="ck_message_media_media_state")
    with refused, db.engine.begin() as conn:
        insert_media(conn, ids["tip"], state="downloaded")
    with db.engine.begin() as conn:
        insert_media(conn, ids["tip"])
    with pytest.raises(RuntimeError, match="1 media items of texts are known"):
        migrate.downgrade(db.engine, "0008")
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM message_media"))
        set_raw(conn, "alerts", "kind", ids["alert"], AlertKind.MEDIA_FAILED.value)
    with pytest.raises(RuntimeError, match="1 rows of alerts have kinds 0008 does not know"):
        migrate.downgrade(db.engine, "0008")
    with db.engine.begin() as conn:
        set_raw(conn, "alerts", "kind", ids["alert"], AlertKind.PLAN_FAILED.value)

    migrate.downgrade(db.engine, "0008")
    assert migrate.current_revision(db.engine) == "0008"
    assert stored(db, ids) == before
    assert "message_media" not in sa.inspect(db.engine).get_table_names()
    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM tip_events"))
    migrate.upgrade(db.engine)
    assert migrate.is_current(db.engine)
    db.dispose()
