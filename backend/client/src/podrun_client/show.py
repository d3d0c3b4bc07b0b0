"""Showing one run (or one kernel cell) to its end: every event to a view, artifacts saved as they come."""

from __future__ import annotations

from pathlib import Path

from podrun_client.artifacts import save as save_artifact
from podrun_client.client import TERMINAL, ArtifactCreated, ConnectionLost, DownloadFailed, PodrunClient, StatusChange
from podrun_client.generated import ExecutionSummary
from podrun_client.views import View


async def show(
    client: PodrunClient, execution_id: str, after_seq: int, view: View, *, artifacts: Path | None = None
) -> ExecutionSummary:
    """Show a run's events until its terminal status (saving artifacts in `artifacts`); return the run as it ended."""
    async for event in client.follow(execution_id, after_seq=after_seq):
        view.event(event)
        if artifacts is not None and isinstance(event, ArtifactCreated):
            try:
                view.saved(event, await save_artifact(client, event, artifacts))
            except (DownloadFailed, OSError) as error:
                view.message(f"artifact {event.artifact.name} not saved: {error}")
        if isinstance(event, StatusChange) and event.status in TERMINAL:
            return event.execution
    # Nothing came after after_seq: the run had ended by then (`prun watch --after` its last seq).
    ended = (await client.execution(id=execution_id)).execution
    if ended is None or ended.status not in TERMINAL:
        raise ConnectionLost("the server stopped sending events before the run ended")
    return ended
