"""tools: published, reviewed versions of saved scripts with a form; the tool version an execution ran

Roles are stored as text without a constraint (native_enum=False), so CONTRIBUTOR needs no change here.

Revision ID: 0008_tools
Revises: 0004
Create Date: 2026-12-06 12:30:00.000000
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_tools"
down_revision: str | None = "0006_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _audit_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "tools",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("slug", sa.String(length=50), nullable=False),
        sa.Column("author_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("approved_version", sa.Integer(), nullable=True),
        *_audit_columns(),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_tools_author_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tools")),
        sa.UniqueConstraint("slug", name=op.f("uq_tools_slug")),
    )
    op.create_index(op.f("ix_tools_author_id"), "tools", ["author_id"], unique=False)
    op.create_table(
        "tool_versions",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("tool_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("PENDING", "APPROVED", "REJECTED", name="toolversionstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("script", sa.Text(), nullable=False),
        sa.Column("runtime", sa.String(length=64), nullable=False),
        sa.Column("source_visible", sa.Boolean(), nullable=False),
        sa.Column("fields", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reviewed_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("reviewer_id", advanced_alchemy.types.guid.GUID(length=16), nullable=True),
        *_audit_columns(),
        sa.ForeignKeyConstraint(
            ["tool_id"], ["tools.id"], name=op.f("fk_tool_versions_tool_id_tools"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["users.id"], name=op.f("fk_tool_versions_reviewer_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_versions")),
        sa.UniqueConstraint("tool_id", "version", name="uq_tool_versions_tool_id_version"),
    )
    op.create_index(op.f("ix_tool_versions_status"), "tool_versions", ["status"], unique=False)
    op.add_column(
        "executions", sa.Column("tool_version_id", advanced_alchemy.types.guid.GUID(length=16), nullable=True)
    )
    op.create_foreign_key(
        op.f("fk_executions_tool_version_id_tool_versions"),
        "executions",
        "tool_versions",
        ["tool_version_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_executions_tool_version_id_tool_versions"), "executions", type_="foreignkey")
    op.drop_column("executions", "tool_version_id")
    op.drop_index(op.f("ix_tool_versions_status"), table_name="tool_versions")
    op.drop_table("tool_versions")
    op.drop_index(op.f("ix_tools_author_id"), table_name="tools")
    op.drop_table("tools")
