"""Media of incoming texts: one row per picture (video, audio) of a text (``message_media``),
fetched from the provider by a worker, checked, kept and deleted at the provider; the bytes in
``media_contents`` when HOTLINE_MEDIA_STORE=database; and the timeline kinds and alert kind they
write.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The vocabularies as of this revision (hotline.models.TipEventKind, AlertKind, MediaState,
# MediaStoreKind): a member added later needs a migration of its check constraint.
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
    "message.media_fetched",
    "message.media_refused",
    "message.media_failed",
    "message.media_deleted_at_provider",
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
#: Those of 0008 (the downgrade's constraint).
TIP_EVENT_KINDS_0008 = tuple(
    k
    for k in TIP_EVENT_KINDS
    if k
    not in {
        "message.media_fetched",
        "message.media_refused",
        "message.media_failed",
        "message.media_deleted_at_provider",
    }
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
    "level_to_confirm",
    "threat_words_negated",
    "reporter_needs_agent",
    "media_failed",
)
ALERT_KINDS_0008 = tuple(k for k in ALERT_KINDS if k != "media_failed")
MEDIA_STATES = (
    "pending",
    "fetching",
    "fetched",
    "refused",
    "failed",
)
MEDIA_STORES = (
    "directory",
    "database",
)


def _enum(values: Sequence[str], name: str, length: int) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def _vocabularies() -> tuple[tuple[str, str, sa.Enum, sa.Enum], ...]:
    """(table, column, type at 0008, type at 0009)."""
    return (
        (
            "tip_events",
            "kind",
            _enum(TIP_EVENT_KINDS_0008, "tip_event_kind", 64),
            _enum(TIP_EVENT_KINDS, "tip_event_kind", 64),
        ),
        (
            "alerts",
            "kind",
            _enum(ALERT_KINDS_0008, "alert_kind", 64),
            _enum(ALERT_KINDS, "alert_kind", 64),
        ),
    )


def upgrade() -> None:
    """Upgrade schema. Only new tables and the two vocabularies: ``tips`` and ``tip_messages``,
    which the new tables refer to, are not batch-altered (on SQLite that copies and drops a
    table other rows refer to)."""
    op.create_table(
        "message_media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("message_sid", sa.String(length=64), nullable=True),
        sa.Column("media_index", sa.Integer(), nullable=False),
        sa.Column("provider_url", sa.String(length=500), nullable=True),
        sa.Column("declared_content_type", sa.String(length=64), nullable=True),
        sa.Column("content_type", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("stored_in", _enum(MEDIA_STORES, "media_store", 32), nullable=True),
        sa.Column("storage_key", sa.String(length=200), nullable=True),
        sa.Column("state", _enum(MEDIA_STATES, "media_state", 32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delete_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("refused_reason", sa.String(length=200), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["tip_messages.id"],
            name=op.f("fk_message_media_message_id_tip_messages"),
        ),
        sa.ForeignKeyConstraint(["tip_id"], ["tips.id"], name=op.f("fk_message_media_tip_id_tips")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_media")),
        sa.UniqueConstraint(
            "message_sid", "media_index", name=op.f("uq_message_media_message_sid_media_index")
        ),
    )
    op.create_index(
        op.f("ix_message_media_next_attempt_at"), "message_media", ["next_attempt_at"], unique=False
    )
    op.create_index(op.f("ix_message_media_tip_id"), "message_media", ["tip_id"], unique=False)
    op.create_table(
        "media_contents",
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["media_id"],
            ["message_media.id"],
            name=op.f("fk_media_contents_media_id_message_media"),
        ),
        sa.PrimaryKeyConstraint("media_id", name=op.f("pk_media_contents")),
    )
    for table, column, before, after in _vocabularies():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=before, type_=after, existing_nullable=False
            )
    _restore_timeline_triggers_on_sqlite()


def downgrade() -> None:
    """Downgrade schema. Refused while any media item is known (its row may be the only pointer
    to a picture still at the provider, or to bytes the hotline keeps) or any timeline entry or
    alert has a kind 0008 does not know (the timeline is append-only evidence)."""
    bind = op.get_bind()
    items = bind.execute(sa.text("SELECT count(*) FROM message_media")).scalar()
    if items:
        raise RuntimeError(
            f"downgrade below 0009 refused: {items} media items of texts are known "
            "(message_media); they would be lost"
        )
    for table, values in (("tip_events", TIP_EVENT_KINDS_0008), ("alerts", ALERT_KINDS_0008)):
        kind = sa.table(table, sa.column("kind")).c.kind
        newer = bind.execute(sa.select(sa.func.count()).where(kind.not_in(values))).scalar()
        if newer:
            raise RuntimeError(
                f"downgrade below 0009 refused: {newer} rows of {table} have kinds 0008 "
                "does not know"
            )
    for table, column, before, after in reversed(_vocabularies()):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=after, type_=before, existing_nullable=False
            )
    op.drop_table("media_contents")
    op.drop_index(op.f("ix_message_media_tip_id"), table_name="message_media")
    op.drop_index(op.f("ix_message_media_next_attempt_at"), table_name="message_media")
    op.drop_table("message_media")
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
