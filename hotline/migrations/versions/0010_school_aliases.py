"""School aliases: other names people use for a school ("LHS"), from the directory's optional
``school_aliases`` column, matched like the name by the voice menu and the text bot.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema. In place, not batch mode: on SQLite a batch copy of ``schools`` would drop
    the table that tips and contacts refer to."""
    op.add_column(
        "schools",
        sa.Column("aliases", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )


def downgrade() -> None:
    """Downgrade schema (the aliases are lost; the directory file still has them)."""
    op.execute("ALTER TABLE schools DROP COLUMN aliases")
