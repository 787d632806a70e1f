"""Dispatcher: school breaks, notification legs, the outbox, the agents' alert feed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "district_breaks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "break",
                "summer",
                name="break_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_district_breaks_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_district_breaks")),
    )
    with op.batch_alter_table("district_breaks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_district_breaks_district_id"), ["district_id"], unique=False
        )

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("dedupe_key", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["tip_id"], ["tips.id"], name=op.f("fk_alerts_tip_id_tips")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_alerts_dedupe_key")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_tip_id"), ["tip_id"], unique=False)

    op.create_table(
        "notification_legs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "poc",
                "psap",
                "law_enforcement",
                name="leg_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "open",
                "confirmed",
                "cancelled",
                name="leg_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_by_contact_id", sa.Integer(), nullable=True),
        sa.Column("confirmed_via", sa.String(length=16), nullable=True),
        sa.Column("unconfirmed_alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["confirmed_by_contact_id"],
            ["contacts.id"],
            name=op.f("fk_notification_legs_confirmed_by_contact_id_contacts"),
        ),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tips.id"], name=op.f("fk_notification_legs_tip_id_tips")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_legs")),
        sa.UniqueConstraint("tip_id", "kind", name=op.f("uq_notification_legs_tip_id_kind")),
    )
    with op.batch_alter_table("notification_legs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notification_legs_tip_id"), ["tip_id"], unique=False)

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("leg_id", sa.Integer(), nullable=True),
        sa.Column(
            "purpose",
            sa.Enum(
                "alert",
                "update",
                "escalation",
                name="notification_purpose",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "channel",
            sa.Enum(
                "voice",
                "sms",
                "email",
                name="notification_channel",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("phone_number_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column(
            "level",
            sa.Enum(
                "critical",
                "standard",
                "other",
                name="tip_level",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "planned",
                "claimed",
                "sending",
                "sent",
                "unknown",
                "failed",
                "cancelled",
                name="notification_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_sid", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("past_due_alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_notifications_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["leg_id"],
            ["notification_legs.id"],
            name=op.f("fk_notifications_leg_id_notification_legs"),
        ),
        sa.ForeignKeyConstraint(
            ["phone_number_id"],
            ["phone_numbers.id"],
            name=op.f("fk_notifications_phone_number_id_phone_numbers"),
        ),
        sa.ForeignKeyConstraint(["tip_id"], ["tips.id"], name=op.f("fk_notifications_tip_id_tips")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifications_contact_id"), ["contact_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_notifications_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_leg_id"), ["leg_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_notifications_provider_sid"), ["provider_sid"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_notifications_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_tip_id"), ["tip_id"], unique=False)

    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("possible_crime", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("notify_deadline_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("plan_version", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.drop_column("plan_version")
        batch_op.drop_column("notify_deadline_at")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("possible_crime")

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_tip_id"))
        batch_op.drop_index(batch_op.f("ix_notifications_state"))
        batch_op.drop_index(batch_op.f("ix_notifications_provider_sid"))
        batch_op.drop_index(batch_op.f("ix_notifications_leg_id"))
        batch_op.drop_index(batch_op.f("ix_notifications_due_at"))
        batch_op.drop_index(batch_op.f("ix_notifications_contact_id"))

    op.drop_table("notifications")
    with op.batch_alter_table("notification_legs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_legs_tip_id"))

    op.drop_table("notification_legs")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_tip_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_created_at"))

    op.drop_table("alerts")
    with op.batch_alter_table("district_breaks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_district_breaks_district_id"))

    op.drop_table("district_breaks")
