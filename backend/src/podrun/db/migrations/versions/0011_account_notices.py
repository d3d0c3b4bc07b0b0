"""account notices: PostgreSQL tells the API processes of every change to a sign-in or an account

A change to a sign-in, or to an account other than its storage counter, NOTIFYs channel `podrun_accounts` with the
user's id, delivered as the changing transaction commits (accounts/live_sign_ins.py listens).

Revision ID: 0011_account_notices
Revises: 0010_kernels
Create Date: 2026-12-06 22:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_account_notices"
down_revision: str | None = "0010_kernels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# TG_ARGV[0]: the column holding the user's id.
NOTIFY = """
CREATE FUNCTION podrun_account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'podrun_accounts',
        (CASE TG_OP WHEN 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END) ->> TG_ARGV[0]
    );
    RETURN NULL;
END
$$
"""

# Each submission moves the storage counter (and with it updated_at): that says nothing of who may sign in.
ACCOUNT_CHANGED = (
    "to_jsonb(OLD) - 'storage_bytes' - 'updated_at' IS DISTINCT FROM to_jsonb(NEW) - 'storage_bytes' - 'updated_at'"
)


def upgrade() -> None:
    op.execute(NOTIFY)
    op.execute(
        "CREATE TRIGGER sign_ins_notify AFTER UPDATE OR DELETE ON sign_ins "
        "FOR EACH ROW EXECUTE FUNCTION podrun_account_changed('user_id')"
    )
    op.execute(
        f"CREATE TRIGGER users_notify_update AFTER UPDATE ON users FOR EACH ROW WHEN ({ACCOUNT_CHANGED}) "
        "EXECUTE FUNCTION podrun_account_changed('id')"
    )
    op.execute(
        "CREATE TRIGGER users_notify_delete AFTER DELETE ON users "
        "FOR EACH ROW EXECUTE FUNCTION podrun_account_changed('id')"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER users_notify_delete ON users")
    op.execute("DROP TRIGGER users_notify_update ON users")
    op.execute("DROP TRIGGER sign_ins_notify ON sign_ins")
    op.execute("DROP FUNCTION podrun_account_changed()")
