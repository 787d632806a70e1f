"""The anonymous conversation: an agent's reply to a reporter goes through the outbox
(``notifications.message_id``, purpose ``reporter_reply``), and a reporter's messages can be
marked read (``tip_messages.read_at``, ``read_by``, timeline kind ``messages.read``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The vocabularies as of this revision (hotline.models.TipEventKind, NotificationPurpose): a
# member added later needs a migration of its check constraint.
TIP_EVENT_KINDS = (
    "tip.received",
    "tip.opened",
    "tip.incomplete",
    "tip.reclassified",
    "tip.school_set",
    "tip.triaged",
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
    "messages.read",
    "reporter.sms_opted_out",
    "reporter.sms_opted_in",
    "intake.asked",
    "intake.handed_to_agent",
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
#: Those of 0007 (the downgrade's constraint).
TIP_EVENT_KINDS_0007 = tuple(k for k in TIP_EVENT_KINDS if k != "messages.read")
NOTIFICATION_PURPOSES = (
    "alert",
    "update",
    "escalation",
    "reporter_reply",
)
NOTIFICATION_PURPOSES_0007 = tuple(p for p in NOTIFICATION_PURPOSES if p != "reporter_reply")


def _enum(values: Sequence[str], name: str, length: int) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("tip_messages", sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tip_messages", sa.Column("read_by", sa.String(length=64), nullable=True))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_notifications_message_id"), ["message_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_message_id_tip_messages"),
            "tip_messages",
            ["message_id"],
            ["id"],
        )
        batch_op.alter_column(
            "purpose",
            existing_type=_enum(NOTIFICATION_PURPOSES_0007, "notification_purpose", 32),
            type_=_enum(NOTIFICATION_PURPOSES, "notification_purpose", 32),
            existing_nullable=False,
        )
    with op.batch_alter_table("tip_events", schema=None) as batch_op:
        batch_op.alter_column(
            "kind",
            existing_type=_enum(TIP_EVENT_KINDS_0007, "tip_event_kind", 64),
            type_=_enum(TIP_EVENT_KINDS, "tip_event_kind", 64),
            existing_nullable=False,
        )
    _restore_timeline_triggers_on_sqlite()


def downgrade() -> None:
    """Downgrade schema. Refused while replies to reporters or ``messages.read`` entries exist:
    the older constraints would not hold them (and the timeline is append-only evidence)."""
    bind = op.get_bind()
    purpose = sa.table("notifications", sa.column("purpose")).c.purpose
    kind = sa.table("tip_events", sa.column("kind")).c.kind
    for table, newer in (
        (
            "notifications",
            bind.execute(sa.select(sa.func.count()).where(purpose == "reporter_reply")).scalar(),
        ),
        (
            "tip_events",
            bind.execute(sa.select(sa.func.count()).where(kind == "messages.read")).scalar(),
        ),
    ):
        if newer:
            raise RuntimeError(
                f"downgrade below 0008 refused: {newer} rows of {table} are of the conversation "
                "0007 does not know"
            )
    with op.batch_alter_table("tip_events", schema=None) as batch_op:
        batch_op.alter_column(
            "kind",
            existing_type=_enum(TIP_EVENT_KINDS, "tip_event_kind", 64),
            type_=_enum(TIP_EVENT_KINDS_0007, "tip_event_kind", 64),
            existing_nullable=False,
        )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.alter_column(
            "purpose",
            existing_type=_enum(NOTIFICATION_PURPOSES, "notification_purpose", 32),
            type_=_enum(NOTIFICATION_PURPOSES_0007, "notification_purpose", 32),
            existing_nullable=False,
        )
        batch_op.drop_constraint(
            batch_op.f("fk_notifications_message_id_tip_messages"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_notifications_message_id"))
        batch_op.drop_column("message_id")
    # In place (SQLite 3.35+ and PostgreSQL): tip_messages is referred to by other rows.
    op.execute("ALTER TABLE tip_messages DROP COLUMN read_by")
    op.execute("ALTER TABLE tip_messages DROP COLUMN read_at")
    _restore_timeline_triggers_on_sqlite()


def _restore_timeline_triggers_on_sqlite() -> None:
    """Batch mode rebuilds ``tip_events`` on SQLite and the dropped table takes its append-only
    triggers along (see 0006): they are made again. PostgreSQL keeps them."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS tip_events_no_{action.lower()}")
        op.execute(
            f"CREATE TRIGGER tip_events_no_{action.lower()} BEFORE {action} ON tip_events "
            "BEGIN SELECT RAISE(ABORT, 'tip_events is append-only'); END"
        )
