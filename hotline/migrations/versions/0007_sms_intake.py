"""The text bot's guided intake: one row per SMS tip (``sms_intakes``), the time a Critical tip's
duty leg waits for the school the bot asked for (``tips.school_expected_until``), and the new
timeline kinds and alert kinds they write.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The vocabularies as of this revision (hotline.models.TipEventKind, AlertKind, IntakeStep): a
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
#: Those of 0006 (the downgrade's constraint).
TIP_EVENT_KINDS_0006 = tuple(
    k
    for k in TIP_EVENT_KINDS
    if k not in {"tip.school_set", "tip.triaged", "intake.asked", "intake.handed_to_agent"}
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
)
ALERT_KINDS_0006 = tuple(
    k
    for k in ALERT_KINDS
    if k not in {"level_to_confirm", "threat_words_negated", "reporter_needs_agent"}
)
INTAKE_STEPS = (
    "ask_school",
    "confirm_school",
    "ask_what",
    "done",
    "with_agent",
)


def _enum(values: Sequence[str], name: str, length: int) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def _vocabularies(
    tip_event_kinds: Sequence[str], alert_kinds: Sequence[str]
) -> tuple[tuple[str, str, sa.Enum, sa.Enum], ...]:
    """(table, column, type before, type after) for a change between the two revisions."""
    return (
        (
            "tip_events",
            "kind",
            _enum(TIP_EVENT_KINDS_0006, "tip_event_kind", 64),
            _enum(tip_event_kinds, "tip_event_kind", 64),
        ),
        (
            "alerts",
            "kind",
            _enum(ALERT_KINDS_0006, "alert_kind", 64),
            _enum(alert_kinds, "alert_kind", 64),
        ),
    )


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "sms_intakes",
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("step", _enum(INTAKE_STEPS, "intake_step", 32), nullable=False),
        sa.Column("misses", sa.Integer(), nullable=False),
        sa.Column("offered_school_ids", sa.JSON(), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tip_id"], ["tips.id"], name=op.f("fk_sms_intakes_tip_id_tips")),
        sa.PrimaryKeyConstraint("tip_id", name=op.f("pk_sms_intakes")),
    )
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("school_expected_until", sa.DateTime(timezone=True), nullable=True)
        )
    for table, column, before, after in _vocabularies(TIP_EVENT_KINDS, ALERT_KINDS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=before, type_=after, existing_nullable=False
            )
    _restore_timeline_triggers_on_sqlite()


def downgrade() -> None:
    """Downgrade schema. Timeline entries and alerts of the new kinds would break the older
    constraint: the downgrade refuses while any exist (the timeline is append-only evidence)."""
    bind = op.get_bind()
    for table, values in (("tip_events", TIP_EVENT_KINDS_0006), ("alerts", ALERT_KINDS_0006)):
        kind = sa.table(table, sa.column("kind")).c.kind
        newer = bind.execute(sa.select(sa.func.count()).where(kind.not_in(values))).scalar()
        if newer:
            raise RuntimeError(
                f"downgrade below 0007 refused: {newer} rows of {table} have kinds 0006 "
                "does not know"
            )
    for table, column, before, after in reversed(_vocabularies(TIP_EVENT_KINDS, ALERT_KINDS)):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=after, type_=before, existing_nullable=False
            )
    # Not batch mode: on SQLite it would copy ``tips`` and drop the original, which the rows
    # that refer to tips forbid. Both databases drop a column in place (SQLite since 3.35).
    op.execute("ALTER TABLE tips DROP COLUMN school_expected_until")
    op.drop_table("sms_intakes")
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
