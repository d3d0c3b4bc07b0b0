"""Runs shared by link: the execution_shares table's one writer, and the rules of sharing.

A token is `secrets.token_urlsafe(32)` (256 random bits) handed to the owner once; only its SHA-256 is stored,
so the table alone opens nothing. One share per run: sharing again replaces the token (the old link stops
working), and unsharing deletes the row, so a revoked token and an unknown one look the same.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from uuid_utils.compat import uuid7

from podrun.accounts.models import User
from podrun.executions.models import Artifact, Execution, ExecutionShare
from podrun.executions.service import ExecutionService

# token_urlsafe(32) gives 43 characters; anything far longer is not a token and is not hashed.
MAX_TOKEN_LENGTH = 128


@dataclass(frozen=True)
class SharedRun:
    """A run as its viewers see it, and whether they see its input."""

    execution: Execution
    include_input: bool


def token_hash(token: str) -> str:
    """The stored form of a share token."""
    return hashlib.sha256(token.encode()).hexdigest()


class ShareRepository(SQLAlchemyAsyncRepository[ExecutionShare]):
    """Share rows."""

    model_type = ExecutionShare

    async def replace(self, execution_id: UUID, hashed: str, *, include_input: bool) -> None:
        """Share the run under this token hash, in place of any earlier share, and commit."""
        moment = datetime.now(UTC)
        statement = insert(ExecutionShare).values(
            id=uuid7(),
            execution_id=execution_id,
            token_hash=hashed,
            include_input=include_input,
            created_at=moment,
            updated_at=moment,
        )
        # One statement, so two shares of one run at once leave one row (the later token) and no error.
        statement = statement.on_conflict_do_update(
            index_elements=[ExecutionShare.execution_id],
            set_={"token_hash": hashed, "include_input": include_input, "created_at": moment, "updated_at": moment},
        )
        await self.session.execute(statement)
        await self.session.commit()

    async def remove(self, execution_id: UUID) -> bool:
        """Stop sharing the run and commit; False if it was not shared."""
        result = await self.session.execute(delete(ExecutionShare).where(ExecutionShare.execution_id == execution_id))
        await self.session.commit()
        return bool(getattr(result, "rowcount", 0))

    async def find(self, hashed: str) -> SharedRun | None:
        """The run shared under this token hash, if any."""
        query = (
            select(Execution, ExecutionShare.include_input)
            .join(ExecutionShare, ExecutionShare.execution_id == Execution.id)
            .where(ExecutionShare.token_hash == hashed)
        )
        row = (await self.session.execute(query)).first()
        return None if row is None else SharedRun(execution=row[0], include_input=row[1])


class Shares:
    """Sharing runs by link, over one execution service's session."""

    def __init__(self, executions: ExecutionService) -> None:
        self.executions = executions
        self.repository = ShareRepository(session=executions.repository.session)

    async def share(self, user: User, execution_id: str, *, include_input: bool) -> tuple[Execution, str]:
        """A new token for a run `user` may see (NOT_FOUND otherwise); any earlier token stops working."""
        execution = await self.executions.visible(user, execution_id)
        token = secrets.token_urlsafe(32)
        await self.repository.replace(execution.id, token_hash(token), include_input=include_input)
        return execution, token

    async def unshare(self, user: User, execution_id: str) -> bool:
        """Revoke a run's link (NOT_FOUND for a run `user` cannot see); False if it was not shared."""
        execution = await self.executions.visible(user, execution_id)
        return await self.repository.remove(execution.id)

    async def shared(self, token: str) -> SharedRun | None:
        """The run shared under `token`; None for an unknown or revoked one."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        return await self.repository.find(token_hash(token))

    async def artifact(self, token: str, artifact_id: UUID) -> Artifact | None:
        """An artifact with its content, if it belongs to the run shared under `token`."""
        shared = await self.shared(token)
        if shared is None:
            return None
        found = await self.executions.artifacts.with_content(artifact_id)
        if found is None or found[0].execution_id != shared.execution.id:
            return None
        return found[0]
