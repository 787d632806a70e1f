"""Typed vocabularies: a timeline entry's kind, an outbox row's outcome and an alert's kind are
checked by the database, like every other enum (stored as strings, a CHECK constraint each).

Stored values outside the vocabulary are refused, never mapped: the upgrade stops, names them and
changes nothing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The vocabularies as of this revision (hotline.models.TipEventKind, NotificationOutcome,
# AlertKind): a member added later needs a migration of its check constraint.
TIP_EVENT_KINDS = (
    "tip.received",
    "tip.opened",
    "tip.incomplete",
    "tip.reclassified",
    "tip.reconciled",
    "school.unconfirmed",
    "call.caller_verification",
    "recording.added",
    "followup.started",
    "followup.failed",
    "followup.locked",
    "followup.recording",
    "message.from_reporter",
    "message.to_reporter",
    "message.media",
    "message.media_at_provider",
    "messages.heard",
    "reporter.sms_opted_out",
    "reporter.sms_opted_in",
    "notifications.planned",
    "notifications.replanned",
    "notifications.update_planned",
    "notifications.plan_failed",
    "notifications.duty_fallback",
    "notification.sent",
    "notification.failed",
    "notification.unknown",
    "notification.retry",
    "notification.retry_planned",
    "notification.call_ended",
    "notification.status_checked",
    "notification.sms_failed",
    "notification.voicemail_left",
    "notification.late_machine_verdict_ignored",
    "notification.colleague_told",
    "leg.confirmed",
    "receipt.confirmed",
    "leg.moved_on",
    "leg.round_restarted",
    "leg.exhausted",
    "alert.raised",
)
NOTIFICATION_OUTCOMES = (
    "accepted",
    "no-address",
    "error",
    "unknown",
    "failed",
    "worker-lost",
    "leg-closed",
    "leg-confirmed",
    "replanned",
    "bench-cleanup",
    "voicemail",
    "completed",
    "busy",
    "no-answer",
    "canceled",
    "queued",
    "scheduled",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "read",
    "partially_delivered",
)
ALERT_KINDS = (
    "school_unknown",
    "leg_unreachable",
    "leg_unconfirmed",
    "leg_exhausted",
    "plan_failed",
    "duty_unreachable",
    "watchdog_failed",
    "notification_past_due",
    "notification_unknown",
    "notification_failed",
    "email_unknown",
    "email_failed",
    "outage_recovered",
)

#: (table, column, vocabulary, enum name, length, nullable)
COLUMNS: tuple[tuple[str, str, tuple[str, ...], str, int, bool], ...] = (
    ("tip_events", "kind", TIP_EVENT_KINDS, "tip_event_kind", 64, False),
    ("notifications", "outcome", NOTIFICATION_OUTCOMES, "notification_outcome", 32, True),
    ("alerts", "kind", ALERT_KINDS, "alert_kind", 64, False),
)


class UnknownStoredValues(RuntimeError):
    """Stored values that no member of the vocabulary has: the upgrade changed nothing."""


def _enum(values: Sequence[str], name: str, length: int) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def upgrade() -> None:
    """Upgrade schema."""
    _refuse_unknown_values()
    for table, column, values, name, length, nullable in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=sa.String(length=length),
                type_=_enum(values, name, length),
                existing_nullable=nullable,
            )
    _restore_timeline_triggers_on_sqlite()


def downgrade() -> None:
    """Downgrade schema (the columns are free strings again; every value stays)."""
    for table, column, values, name, length, nullable in reversed(COLUMNS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=_enum(values, name, length),
                type_=sa.String(length=length),
                existing_nullable=nullable,
            )
    _restore_timeline_triggers_on_sqlite()


def _refuse_unknown_values() -> None:
    """Stop before any change when a column holds a value outside its vocabulary, naming every
    such value: mapping it to some member would rewrite history (the timeline is evidence), and
    the check constraint would refuse it anyway, with a message that names nothing."""
    bind = op.get_bind()
    found = []
    for table, column, values, _name, _length, _nullable in COLUMNS:
        stored = sa.table(table, sa.column(column)).c[column]
        rows = bind.execute(
            sa.select(stored, sa.func.count())
            .where(stored.is_not(None), stored.not_in(values))
            .group_by(stored)
            .order_by(stored)
        ).all()
        found += [f"{table}.{column} = {value!r} ({count} rows)" for value, count in rows]
    if found:
        raise UnknownStoredValues(
            "migration 0006 changed nothing: these stored values are in no vocabulary of "
            f"hotline.models: {'; '.join(found)}. A value the hotline writes belongs in its "
            "enum and in the migration that checks it; correct or remove any other "
            "(tip_events is append-only: its triggers refuse both), then upgrade again."
        )


def _restore_timeline_triggers_on_sqlite() -> None:
    """Batch mode rebuilds a table on SQLite (a copy, then DROP TABLE and a rename), and the
    dropped table takes its triggers along: the timeline's append-only triggers (0001) are made
    again on the new table. PostgreSQL alters the table in place and keeps them."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS tip_events_no_{action.lower()}")
        op.execute(
            f"CREATE TRIGGER tip_events_no_{action.lower()} BEFORE {action} ON tip_events "
            "BEGIN SELECT RAISE(ABORT, 'tip_events is append-only'); END"
        )
