"""the five limits of a run in one column

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 05:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The field names of podrun.core.limits.Limits as they were when this migration was written.
LIMIT_COLUMNS = ("wall_time_ms", "cpu_time_ms", "memory_mib", "output_bytes", "processes")


def upgrade() -> None:
    op.add_column("executions", sa.Column("limits", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    pairs = ", ".join(f"'{column}', {column}" for column in LIMIT_COLUMNS)
    op.execute(f"UPDATE executions SET limits = jsonb_build_object({pairs})")  # noqa: S608 - constant names
    op.alter_column("executions", "limits", nullable=False)
    for column in LIMIT_COLUMNS:
        op.drop_column("executions", column)


def downgrade() -> None:
    for column in LIMIT_COLUMNS:
        op.add_column("executions", sa.Column(column, sa.Integer(), nullable=True))
    assignments = ", ".join(f"{column} = (limits ->> '{column}')::integer" for column in LIMIT_COLUMNS)
    op.execute(f"UPDATE executions SET {assignments}")  # noqa: S608 - constant names
    for column in LIMIT_COLUMNS:
        op.alter_column("executions", column, nullable=False)
    op.drop_column("executions", "limits")
