"""The duty line and plan retries: duty contacts (no district), the duty leg, a tip's failed
plans, alerts that are updated instead of repeated.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = ("school_contact", "district_contact", "psap", "law_enforcement", "pio")
LEG_KINDS = ("poc", "psap", "law_enforcement")


def _enum(values: Sequence[str], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.alter_column("district_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column(
            "role",
            existing_type=_enum(ROLES, "contact_role"),
            type_=_enum((*ROLES, "duty"), "contact_role"),
            existing_nullable=False,
        )
    with op.batch_alter_table("notification_legs", schema=None) as batch_op:
        batch_op.alter_column(
            "kind",
            existing_type=_enum(LEG_KINDS, "leg_kind"),
            type_=_enum((*LEG_KINDS, "duty"), "leg_kind"),
            existing_nullable=False,
        )
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("plan_failures", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("plan_retry_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("plan_error", sa.String(length=500), nullable=True))
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.alter_column("plan_failures", server_default=None)
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("occurrences", sa.Integer(), nullable=False, server_default="1")
        )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.alter_column("occurrences", server_default=None)


def downgrade() -> None:
    """Downgrade schema (duty rows and duty legs are removed first: the old schema has no
    place for them)."""
    op.execute(
        "DELETE FROM notifications WHERE leg_id IN "
        "(SELECT id FROM notification_legs WHERE kind = 'duty')"
    )
    op.execute("DELETE FROM notification_legs WHERE kind = 'duty'")
    op.execute(
        "UPDATE notifications SET contact_id = NULL WHERE contact_id IN "
        "(SELECT id FROM contacts WHERE role = 'duty')"
    )
    op.execute("DELETE FROM contacts WHERE role = 'duty'")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("occurrences")
        batch_op.drop_column("updated_at")
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.drop_column("plan_error")
        batch_op.drop_column("plan_retry_at")
        batch_op.drop_column("plan_failures")
    with op.batch_alter_table("notification_legs", schema=None) as batch_op:
        batch_op.alter_column(
            "kind",
            existing_type=_enum((*LEG_KINDS, "duty"), "leg_kind"),
            type_=_enum(LEG_KINDS, "leg_kind"),
            existing_nullable=False,
        )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.alter_column(
            "role",
            existing_type=_enum((*ROLES, "duty"), "contact_role"),
            type_=_enum(ROLES, "contact_role"),
            existing_nullable=False,
        )
        batch_op.alter_column("district_id", existing_type=sa.Integer(), nullable=False)
