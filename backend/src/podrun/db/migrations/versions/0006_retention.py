"""storage held per run and per user, and an index for the retention sweep

Revision ID: 0006_retention
Revises: 0004
Create Date: 2026-12-06 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_retention"
down_revision: str | None = "0005_sign_ins"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What each run holds: script, stdin, output, input files (decoded from base64: 3 bytes per 4 characters)
# and artifacts. Written for the runs already there; kept up to date by the code from now on.
_RUN_BYTES = """
UPDATE executions AS e SET stored_bytes =
    octet_length(e.script) + coalesce(octet_length(e.stdin), 0) + octet_length(e.stdout) + octet_length(e.stderr)
    + coalesce((SELECT sum(length(file->>'content') / 4 * 3) FROM jsonb_array_elements(e.files) AS file), 0)
    + coalesce((SELECT sum(a.size_bytes) FROM artifacts AS a WHERE a.execution_id = e.id), 0)
"""
_USER_BYTES = """
UPDATE users AS u SET storage_bytes =
    coalesce((SELECT sum(e.stored_bytes) FROM executions AS e WHERE e.owner_id = u.id), 0)
"""


def upgrade() -> None:
    op.add_column("executions", sa.Column("stored_bytes", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("users", sa.Column("storage_bytes", sa.BigInteger(), server_default="0", nullable=False))
    op.execute(_RUN_BYTES)
    op.execute(_USER_BYTES)
    op.create_index("ix_executions_finished_at", "executions", ["finished_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_executions_finished_at", table_name="executions")
    op.drop_column("users", "storage_bytes")
    op.drop_column("executions", "stored_bytes")
