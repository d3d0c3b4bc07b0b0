"""kernels: Python processes kept alive between cells; executions.kernel_id links a cell to its kernel

Revision ID: 0010_kernels
Revises: 0009_shares
Create Date: 2026-12-06 19:00:00.000000
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_kernels"
down_revision: str | None = "0009_shares"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kernels",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("owner_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("runtime", sa.String(length=64), nullable=False),
        sa.Column("limits", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("idle_timeout_s", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("STARTING", "IDLE", "BUSY", "STOPPED", "DEAD", name="kernelstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("last_used_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("ended_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.Column("request", sa.String(length=16), nullable=True),
        sa.Column("cells_run", sa.Integer(), server_default="0", nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_kernels_owner_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kernels")),
    )
    op.create_index("ix_kernels_owner_id_id", "kernels", ["owner_id", "id"], unique=False)
    op.create_index("ix_kernels_status", "kernels", ["status"], unique=False)
    op.add_column("executions", sa.Column("kernel_id", advanced_alchemy.types.guid.GUID(length=16), nullable=True))
    op.create_foreign_key(
        op.f("fk_executions_kernel_id_kernels"), "executions", "kernels", ["kernel_id"], ["id"], ondelete="SET NULL"
    )
    op.create_index(op.f("ix_executions_kernel_id"), "executions", ["kernel_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_executions_kernel_id"), table_name="executions")
    op.drop_constraint(op.f("fk_executions_kernel_id_kernels"), "executions", type_="foreignkey")
    op.drop_column("executions", "kernel_id")
    op.drop_index("ix_kernels_status", table_name="kernels")
    op.drop_index("ix_kernels_owner_id_id", table_name="kernels")
    op.drop_table("kernels")
