"""Inbound message sids: what the outage reconciliation checks the provider's log against.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "inbound_message_sids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_message_sids")),
        sa.UniqueConstraint("sid", name=op.f("uq_inbound_message_sids_sid")),
    )
    with op.batch_alter_table("inbound_message_sids", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbound_message_sids_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("inbound_message_sids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_message_sids_created_at"))

    op.drop_table("inbound_message_sids")
