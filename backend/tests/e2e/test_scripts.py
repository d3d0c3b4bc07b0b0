"""Saved scripts: each user's own, saved, renamed, listed, run by id and deleted over the real API."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from podrun.settings import Settings
from tests.client import GraphQLClient, GraphQLFailure
from tests.e2e.helpers import collect, final, lines

SAVE = """
mutation($input: SaveScriptInput!) {
  saveScript(input: $input) { id name script runtime { id } createdAt updatedAt }
}
"""
SCRIPT = "query($id: ID!) { script(id: $id) { id name script runtime { id } } }"
SCRIPTS = """
query($first: Int, $after: String) {
  scripts(first: $first, after: $after) { edges { cursor node { id name } } pageInfo { hasNextPage endCursor } }
}
"""
DELETE = "mutation($id: ID!) { deleteScript(id: $id) }"
SUBMIT_SAVED = """
mutation($input: SubmitExecutionInput!) { submitExecution(input: $input) { id script runtime { id } } }
"""


async def save(client: GraphQLClient, **fields: Any) -> dict[str, Any]:
    data = await client.execute(SAVE, {"input": fields})
    return data["saveScript"]  # type: ignore[no-any-return]


async def test_a_saved_script_is_read_renamed_and_deleted(alice: GraphQLClient) -> None:
    created = await save(alice, name="  hello  ", script="print('hello')\n")
    assert (created["name"], created["script"]) == ("hello", "print('hello')\n")
    read = (await alice.execute(SCRIPT, {"id": created["id"]}))["script"]
    assert read == {k: created[k] for k in ("id", "name", "script", "runtime")}

    renamed = await save(alice, id=created["id"], name="greeting", script=created["script"])
    assert (renamed["id"], renamed["name"], renamed["createdAt"]) == (created["id"], "greeting", created["createdAt"])
    assert renamed["updatedAt"] >= created["updatedAt"]

    assert (await alice.execute(DELETE, {"id": created["id"]}))["deleteScript"] is True
    for operation in (SCRIPT, DELETE):
        with pytest.raises(GraphQLFailure) as failure:
            await alice.execute(operation, {"id": created["id"]})
        assert (failure.value.code, failure.value.message) == ("NOT_FOUND", "script not found")


async def test_scripts_are_listed_newest_first_page_by_page(alice: GraphQLClient) -> None:
    names = [f"script {n}" for n in range(5)]
    for name in names:
        await save(alice, name=name, script="pass\n")
    seen: list[str] = []
    after = None
    while True:
        page = (await alice.execute(SCRIPTS, {"first": 2, "after": after}))["scripts"]
        seen.extend(edge["node"]["name"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == names[::-1]


async def test_another_users_script_is_indistinguishable_from_a_missing_one(
    alice: GraphQLClient, bob: GraphQLClient
) -> None:
    bobs = await save(bob, name="bob's", script="print('bob')\n")
    answers = []
    for script_id in (bobs["id"], str(uuid.uuid4()), "not-an-id"):
        for operation, variables in (
            (SCRIPT, {"id": script_id}),
            (DELETE, {"id": script_id}),
            (SAVE, {"input": {"id": script_id, "name": "mine now", "script": "print('alice')\n"}}),
            (SUBMIT_SAVED, {"input": {"scriptId": script_id}}),
        ):
            with pytest.raises(GraphQLFailure) as failure:
                await alice.execute(operation, variables)
            answers.append((failure.value.code, failure.value.message))
    assert set(answers) == {("NOT_FOUND", "script not found")}
    assert (await bob.execute(SCRIPT, {"id": bobs["id"]}))["script"]["script"] == "print('bob')\n"
    assert (await alice.execute(SCRIPTS, {"first": 10}))["scripts"]["edges"] == []


async def test_a_run_starts_from_a_saved_script(alice: GraphQLClient) -> None:
    runtimes = (await alice.execute("{ runtimes { id default } }"))["runtimes"]
    other = next((r["id"] for r in runtimes if not r["default"]), runtimes[0]["id"])
    saved = await save(alice, name="two lines", script="print('one')\nprint('two')\n", runtime=other)
    submitted = (await alice.execute(SUBMIT_SAVED, {"input": {"scriptId": saved["id"]}}))["submitExecution"]
    assert (submitted["script"], submitted["runtime"]["id"]) == (saved["script"], other)
    events = await collect(alice, submitted["id"])
    assert lines(events) == ["one", "two"]
    assert final(events)["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("submission", "message"),
    [({}, "give either script or scriptId"), ({"script": "pass"}, "give either script or scriptId")],
    ids=["neither", "both"],
)
async def test_a_submission_names_exactly_one_script(
    alice: GraphQLClient, submission: dict[str, str], message: str
) -> None:
    saved = await save(alice, name="x", script="pass\n")
    variables = {"input": {**submission, **({"scriptId": saved["id"]} if submission else {})}}
    with pytest.raises(GraphQLFailure) as failure:
        await alice.execute(SUBMIT_SAVED, variables)
    assert (failure.value.code, failure.value.message) == ("BAD_USER_INPUT", message)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "   ", "script": "pass"}, "name must be 1 to 200 characters long"),
        ({"name": "n" * 201, "script": "pass"}, "name must be 1 to 200 characters long"),
        ({"name": "nul\x00", "script": "pass"}, "name must not contain NUL characters"),
        ({"name": "big", "script": "#" * (Settings().limits.script_bytes + 1)}, "script must be at most 65536 bytes"),
        ({"name": "rt", "script": "pass", "runtime": "python-2.7"}, "unknown runtime 'python-2.7'"),
    ],
    ids=["blank-name", "long-name", "nul-name", "too-big", "unknown-runtime"],
)
async def test_bad_scripts_are_refused(alice: GraphQLClient, fields: dict[str, str], message: str) -> None:
    with pytest.raises(GraphQLFailure) as failure:
        await save(alice, **fields)
    assert failure.value.code == "BAD_USER_INPUT"
    assert failure.value.message.startswith(message)
    assert (await alice.execute(SCRIPTS, {"first": 10}))["scripts"]["edges"] == []


async def test_scripts_need_a_signed_in_user(anonymous: GraphQLClient) -> None:
    with pytest.raises(GraphQLFailure) as failure:
        await anonymous.execute(SCRIPTS, {"first": 10})
    assert failure.value.code == "UNAUTHENTICATED"
