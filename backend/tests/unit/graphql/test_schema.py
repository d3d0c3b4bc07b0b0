"""The committed schema is what the code exports, so typed clients never drift from the server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCHEMA_FILE = Path(__file__).resolve().parents[4] / "schema" / "schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    exported = subprocess.run(
        [sys.executable, "-m", "strawberry", "export-schema", "podrun.graphql.schema:schema"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert SCHEMA_FILE.read_text() == exported, "schema/schema.graphql is stale: run `./taskw schema`"


def test_schema_keeps_the_contract() -> None:
    schema = SCHEMA_FILE.read_text()
    for contract_line in (
        "executions(first: Int = 20, after: String = null, status: ExecutionStatus = null, userId: ID = null): "
        "ExecutionConnection!",
        "executionEvents(id: ID!, afterSeq: Int = 0): ExecutionEvent!",
        "sendInput(id: ID!, data: String!, eof: Boolean = false): Boolean!",
        "union ExecutionEvent = OutputChunk | StatusChange",
        # Issue 11: saved scripts, settings, quotas and admin, named as the issue writes them.
        "scripts(first: Int = 20, after: String = null): ScriptConnection!",
        "script(id: ID!): Script",
        "saveScript(input: SaveScriptInput!): Script!",
        "deleteScript(id: ID!): Boolean!",
        "scriptId: ID = null",
        "mySettings: UserSettings!",
        "updateMySettings(input: UserSettingsInput!): UserSettings!",
        "myQuota: Quota!",
        "users(first: Int = 20, after: String = null, search: String = null): UserConnection!",
        "setUserRole(id: ID!, role: Role!): User!",
        "setUserDisabled(id: ID!, disabled: Boolean!): User!",
        "resetUserPassword(id: ID!, password: String!): User!",
        "systemSettings: SystemSettings!",
        "updateSystemSettings(input: SystemSettingsInput!): SystemSettings!",
    ):
        assert contract_line in schema
