"""The artifacts table: the only code that writes it, and the reads downloads and listings need."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import select
from sqlalchemy.orm import undefer

from podrun.executions.models import Artifact, Execution
from podrun.executions.repository import ExecutionRepository


class ArtifactRepository(SQLAlchemyAsyncRepository[Artifact]):
    """Artifact rows."""

    model_type = Artifact

    async def store(self, execution_id: UUID, name: str, media_type: str, content: bytes) -> Artifact:
        """Insert one artifact, counted in its run's storage, and commit, so it can be downloaded as soon as its
        event is out."""
        moment = datetime.now(UTC)
        artifact = Artifact(
            execution_id=execution_id,
            name=name,
            media_type=media_type,
            size_bytes=len(content),
            content=content,
            # In milliseconds, as the event log keeps times: the event and the row tell the same createdAt.
            created_at=moment.replace(microsecond=moment.microsecond // 1000 * 1000),
        )
        self.session.add(artifact)
        await ExecutionRepository(session=self.session).add_stored(execution_id, len(content))
        await self.session.commit()
        return artifact

    async def of_executions(self, execution_ids: Sequence[UUID]) -> dict[UUID, list[Artifact]]:
        """The artifacts of these executions (those with any), each's in the order produced, without content."""
        query = select(Artifact).where(Artifact.execution_id.in_(execution_ids)).order_by(Artifact.id)
        produced: dict[UUID, list[Artifact]] = {}
        for artifact in await self.session.scalars(query):
            produced.setdefault(artifact.execution_id, []).append(artifact)
        return produced

    async def with_content(self, artifact_id: UUID) -> tuple[Artifact, UUID] | None:
        """An artifact with its content, and the owner of its execution; None if there is none."""
        query = (
            select(Artifact, Execution.owner_id)
            .join(Execution, Execution.id == Artifact.execution_id)
            .where(Artifact.id == artifact_id)
            .options(undefer(Artifact.content))
        )
        row = (await self.session.execute(query)).first()
        return None if row is None else (row[0], row[1])
