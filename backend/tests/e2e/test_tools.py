"""Tools over the real API: publish (contributors), review (admins), the catalog, and runs of a tool's form."""

from __future__ import annotations

import base64
import textwrap
import uuid
from typing import Any

import pytest

from tests.client import GraphQLClient, GraphQLFailure
from tests.e2e.helpers import SET_ROLE, collect, final, lines

SAVE = "mutation($input: SaveScriptInput!) { saveScript(input: $input) { id } }"
VERSION_FIELDS = """
id version status note title description sourceVisible source createdAt reviewedAt
fields { name label kind required default help min max choices accept maxBytes }
tool { slug }
"""
PUBLISH = f"mutation($input: PublishToolInput!) {{ publishTool(input: $input) {{ {VERSION_FIELDS} }} }}"
REVIEW = f"""
mutation($id: ID!, $approve: Boolean!, $note: String) {{
  reviewToolVersion(id: $id, approve: $approve, note: $note) {{ {VERSION_FIELDS} }}
}}
"""
PENDING = "{ pendingToolVersions { id version tool { slug } previous { version } } }"
TOOL = f"""
query($slug: String!) {{
  tool(slug: $slug) {{
    slug title description author {{ id }} latest {{ {VERSION_FIELDS} }} versions {{ version status }}
  }}
}}
"""
TOOLS = """
query($first: Int, $after: String, $search: String, $mine: Boolean) {
  tools(first: $first, after: $after, search: $search, mine: $mine) {
    edges { cursor node { slug title latest { version } } } pageInfo { hasNextPage endCursor }
  }
}
"""
RUN = "mutation($input: RunToolInput!) { runTool(input: $input) { id tool { version tool { slug } } } }"
EXECUTION_TOOL = "query($id: ID!) { execution(id: $id) { tool { id version status source } } }"
COUNT = "{ executions(first: 100) { edges { node { id } } } }"

GRADES = textwrap.dedent(
    """\
    import csv, json
    inputs = json.load(open("/tmp/inputs.json"))
    print(json.dumps(inputs, sort_keys=True))
    with open("/tmp/inputs/" + inputs["marks"]) as marks:
        rows = list(csv.DictReader(marks))
    passed = [row["name"] for row in rows if float(row["mark"]) >= inputs["threshold"]]
    print(VERSION, inputs["course"], "passed:", ", ".join(passed))
    try:
        open("/tmp/inputs/mine.txt", "w")
    except OSError:
        print("inputs are read-only")
    """
)
FIELDS = [
    {"name": "threshold", "label": "Pass mark", "kind": "NUMBER", "required": True, "min": 0, "max": 100},
    {"name": "course", "label": "Course", "kind": "CHOICE", "choices": ["maths", "physics"], "default": "maths"},
    {"name": "marks", "label": "Marks (CSV)", "kind": "FILE", "required": True, "accept": [".csv"], "maxBytes": 1000},
]
CSV = b"name,mark\nAda,91\nBert,48\nCleo,75\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def new_slug() -> str:
    return f"grades-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def contributor(admin: GraphQLClient, alice: GraphQLClient, anonymous: GraphQLClient) -> GraphQLClient:
    """Alice, made a CONTRIBUTOR by an admin; a role change ends her sign-ins, so she signs in again."""
    email = (await alice.execute("{ me { email } }"))["me"]["email"]
    changed = await admin.execute(SET_ROLE, {"id": alice.user_id, "role": "CONTRIBUTOR"})
    assert changed["setUserRole"]["role"] == "CONTRIBUTOR"
    return await anonymous.login(email, "correct horse battery")


async def save_script(client: GraphQLClient, script: str, script_id: str | None = None) -> str:
    data = await client.execute(SAVE, {"input": {"name": "grades", "script": script, "id": script_id}})
    return str(data["saveScript"]["id"])


async def publish(client: GraphQLClient, script_id: str, slug: str, **changes: Any) -> dict[str, Any]:
    tool = {"scriptId": script_id, "slug": slug, "title": "Who passed", "description": "Marks against a pass mark."}
    data = await client.execute(PUBLISH, {"input": {**tool, "fields": FIELDS, **changes}})
    return data["publishTool"]  # type: ignore[no-any-return]


async def run_tool(client: GraphQLClient, slug: str, values: dict[str, Any], **changes: Any) -> dict[str, Any]:
    files = [{"field": "marks", "name": "marks.csv", "content": b64(CSV)}]
    data = await client.execute(RUN, {"input": {"slug": slug, "values": values, "files": files, **changes}})
    return data["runTool"]  # type: ignore[no-any-return]


async def failure(client: GraphQLClient, query: str, variables: dict[str, Any]) -> GraphQLFailure:
    with pytest.raises(GraphQLFailure) as raised:
        await client.execute(query, variables)
    return raised.value


async def approved_tool(contributor: GraphQLClient, admin: GraphQLClient) -> str:
    """The slug of a tool of the contributor's, version 1 approved."""
    slug = new_slug()
    version = await publish(contributor, await save_script(contributor, "VERSION = 'v1'\n" + GRADES), slug)
    await admin.execute(REVIEW, {"id": version["id"], "approve": True})
    return slug


async def test_a_tool_is_published_reviewed_found_and_run_version_by_version(
    contributor: GraphQLClient, admin: GraphQLClient, bob: GraphQLClient
) -> None:
    slug = new_slug()
    script_id = await save_script(contributor, "VERSION = 'v1'\n" + GRADES)
    proposed = await publish(contributor, script_id, slug)
    assert (proposed["version"], proposed["status"], proposed["reviewedAt"]) == (1, "PENDING", None)
    assert [field["name"] for field in proposed["fields"]] == ["threshold", "course", "marks"]
    assert proposed["fields"][2]["accept"] == [".csv"]
    # Pending: NOT_FOUND to everyone but its author and admins, and in no catalog.
    assert (await failure(bob, TOOL, {"slug": slug})).code == "NOT_FOUND"
    assert (await failure(bob, RUN, {"input": {"slug": slug, "values": {}}})).code == "NOT_FOUND"
    assert (await bob.execute(TOOLS, {"search": slug}))["tools"]["edges"] == []
    queue = (await admin.execute(PENDING))["pendingToolVersions"]
    assert {"id": proposed["id"], "version": 1, "tool": {"slug": slug}, "previous": None} in queue

    approved = await admin.execute(REVIEW, {"id": proposed["id"], "approve": True, "note": "Clear."})
    assert approved["reviewToolVersion"]["status"] == "APPROVED"
    assert approved["reviewToolVersion"]["reviewedAt"] is not None
    [found] = (await bob.execute(TOOLS, {"search": slug.upper()}))["tools"]["edges"]
    assert found["node"] == {"slug": slug, "title": "Who passed", "latest": {"version": 1}}
    seen = (await bob.execute(TOOL, {"slug": slug}))["tool"]
    assert (seen["author"]["id"], seen["latest"]["note"], seen["latest"]["source"]) == (
        contributor.user_id,
        "Clear.",
        None,
    )

    run = await run_tool(bob, slug, {"threshold": 60})
    assert run["tool"] == {"version": 1, "tool": {"slug": slug}}
    events = await collect(bob, run["id"])
    assert final(events)["status"] == "SUCCEEDED"
    assert lines(events) == [
        '{"course": "maths", "marks": "marks.csv", "threshold": 60}',
        "v1 maths passed: Ada, Cleo",
        "inputs are read-only",
    ]
    assert (await contributor.execute(TOOL, {"slug": slug}))["tool"]["latest"]["source"].startswith("VERSION")

    # Version 2 waits for review while version 1 keeps working; editing the script changes neither.
    await save_script(contributor, "VERSION = 'v2'\n" + GRADES, script_id)
    second = await publish(contributor, script_id, slug, title="Who passed, v2")
    assert (second["version"], second["status"]) == (2, "PENDING")
    v1_run = await run_tool(bob, slug, {"threshold": 80.5, "course": "physics"})
    assert lines(await collect(bob, v1_run["id"]))[1] == "v1 physics passed: Ada"
    assert (await failure(bob, RUN, {"input": {"slug": slug, "version": 2, "values": {}}})).code == "NOT_FOUND"
    assert [v["version"] for v in (await bob.execute(TOOL, {"slug": slug}))["tool"]["versions"]] == [1]
    own = await run_tool(contributor, slug, {"threshold": 50}, version=2)
    assert lines(await collect(contributor, own["id"]))[1] == "v2 maths passed: Ada, Cleo"
    queue = (await admin.execute(PENDING))["pendingToolVersions"]
    assert {"id": second["id"], "version": 2, "tool": {"slug": slug}, "previous": {"version": 1}} in queue

    await admin.execute(REVIEW, {"id": second["id"], "approve": True})
    latest = await run_tool(bob, slug, {"threshold": 50})
    assert lines(await collect(bob, latest["id"]))[1] == "v2 maths passed: Ada, Cleo"
    assert (await bob.execute(TOOL, {"slug": slug}))["tool"]["title"] == "Who passed, v2"
    reproduced = await run_tool(bob, slug, {"threshold": 50}, version=1)
    assert lines(await collect(bob, reproduced["id"]))[1] == "v1 maths passed: Ada, Cleo"
    ran = (await bob.execute(EXECUTION_TOOL, {"id": reproduced["id"]}))["execution"]["tool"]
    assert (ran["version"], ran["status"], ran["source"]) == (1, "APPROVED", None)


def marks(content: bytes = CSV, name: str = "marks.csv", field: str = "marks") -> dict[str, str]:
    return {"field": field, "name": name, "content": b64(content)}


@pytest.mark.parametrize(
    ("values", "files", "field", "message"),
    [
        ({"threshold": "60"}, [marks()], "threshold", "threshold: must be a number"),
        ({"threshold": True}, [marks()], "threshold", "threshold: must be a number"),
        ({"threshold": 101}, [marks()], "threshold", "threshold: must be at most 100"),
        ({"threshold": -0.5}, [marks()], "threshold", "threshold: must be at least 0"),
        ({}, [marks()], "threshold", "threshold: is required"),
        ({"threshold": 50, "course": "art"}, [marks()], "course", "course: must be one of maths, physics"),
        ({"threshold": 50, "course": 1}, [marks()], "course", "course: must be one of maths, physics"),
        ({"threshold": 50}, [], "marks", "marks: is required"),
        ({"threshold": 50}, [marks(b"x" * 1001)], "marks", "marks: the file must be at most 1000 bytes"),
        ({"threshold": 50}, [marks(name="marks.xlsx")], "marks", "marks: must be a file of type .csv"),
        ({"threshold": 50}, [marks(name="../marks.csv")], "marks", None),
        (
            {"threshold": 50},
            [{**marks(), "content": "not base64!"}],
            "marks",
            "marks: the file's content is not base64",
        ),
        ({"threshold": 50}, [marks(), marks()], "marks", "marks: is given two files"),
        ({"threshold": 50, "marks": "marks.csv"}, [marks()], "marks", None),
        ({"threshold": 50, "extra": 1}, [marks()], "extra", "extra: the form has no such field"),
        ({"threshold": 50}, [marks(field="course")], "course", "course: the form has no such file field"),
    ],
)
async def test_a_wrong_value_is_refused_naming_its_field_and_nothing_is_stored(
    contributor: GraphQLClient,
    admin: GraphQLClient,
    bob: GraphQLClient,
    values: dict[str, Any],
    files: list[dict[str, str]],
    field: str,
    message: str | None,
) -> None:
    slug = await approved_tool(contributor, admin)
    refused = await failure(bob, RUN, {"input": {"slug": slug, "values": values, "files": files}})
    assert refused.code == "BAD_USER_INPUT"
    assert refused.errors[0]["extensions"]["field"] == field
    if message is not None:
        assert refused.message == message
    assert (await bob.execute(COUNT))["executions"]["edges"] == []


async def test_values_must_be_an_object(contributor: GraphQLClient, admin: GraphQLClient, bob: GraphQLClient) -> None:
    slug = await approved_tool(contributor, admin)
    refused = await failure(bob, RUN, {"input": {"slug": slug, "values": [50]}})
    assert (refused.code, refused.message) == (
        "BAD_USER_INPUT",
        "values must be a JSON object of field names and values",
    )


async def test_publishing_takes_a_contributor_their_own_script_and_a_free_well_formed_slug(
    contributor: GraphQLClient, admin: GraphQLClient, bob: GraphQLClient
) -> None:
    bobs_script = await save_script(bob, GRADES)
    assert (await failure(bob, PUBLISH, {"input": _publish_input(bobs_script, new_slug())})).code == "FORBIDDEN"
    mine = await save_script(contributor, GRADES)
    refused = await failure(contributor, PUBLISH, {"input": _publish_input(bobs_script, new_slug())})
    assert (refused.code, refused.message) == ("NOT_FOUND", "script not found")
    for slug in ("ab", "Grades", "-grades", "grades-", "gr_ades", "g" * 51):
        refused = await failure(contributor, PUBLISH, {"input": _publish_input(mine, slug)})
        assert refused.code == "BAD_USER_INPUT", slug
        assert refused.message.startswith("slug must be"), slug
    # An admin's tool's slug is taken for anyone else.
    admins_slug = new_slug()
    await publish(admin, await save_script(admin, GRADES), admins_slug)
    refused = await failure(contributor, PUBLISH, {"input": _publish_input(mine, admins_slug)})
    assert (refused.code, refused.message) == ("CONFLICT", f"the slug {admins_slug} is taken")
    assert (await contributor.execute(TOOLS, {"mine": True, "search": admins_slug}))["tools"]["edges"] == []


def _publish_input(script_id: str, slug: str, fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"scriptId": script_id, "slug": slug, "title": "t", "description": "", "fields": fields or FIELDS}


@pytest.mark.parametrize(
    ("field", "name", "message"),
    [
        ({"name": "Pass mark", "label": "x", "kind": "TEXT"}, "(a field name that is not valid)", None),
        ({"name": "a", "label": "A\x00", "kind": "TEXT"}, "a", "a: must not contain NUL characters"),
        ({"name": "a", "label": " ", "kind": "TEXT"}, "a", "a: the label must be 1 to 100 characters long"),
        ({"name": "a", "label": "A", "kind": "TEXT", "min": 1}, "a", "a: min does not apply to a TEXT field"),
        ({"name": "a", "label": "A", "kind": "NUMBER", "min": 2, "max": 1}, "a", "a: min must not be greater than max"),
        ({"name": "a", "label": "A", "kind": "NUMBER", "max": 1, "default": 2}, "a", "a: must be at most 1"),
        ({"name": "a", "label": "A", "kind": "CHOICE"}, "a", "a: a CHOICE field has 1 to 50 choices"),
        ({"name": "a", "label": "A", "kind": "CHOICE", "choices": ["x", "x"]}, "a", "a: the choices must be distinct"),
        ({"name": "a", "label": "A", "kind": "BOOLEAN", "default": "yes"}, "a", "a: must be true or false"),
        (
            {"name": "a", "label": "A", "kind": "FILE", "default": "x.csv"},
            "a",
            "a: default does not apply to a FILE field",
        ),
        ({"name": "a", "label": "A", "kind": "FILE", "accept": ["csv"]}, "a", None),
        ({"name": "a", "label": "A", "kind": "FILE", "maxBytes": 10**9}, "a", None),
        ({"name": "a", "label": "A", "kind": "TEXT", "default": "two\nlines"}, "a", "a: must be a single line"),
    ],
)
async def test_a_malformed_form_is_refused_naming_its_field_and_nothing_is_stored(
    contributor: GraphQLClient, field: dict[str, Any], name: str, message: str | None
) -> None:
    slug = new_slug()
    script_id = await save_script(contributor, GRADES)
    refused = await failure(contributor, PUBLISH, {"input": _publish_input(script_id, slug, [*FIELDS, field])})
    assert (refused.code, refused.errors[0]["extensions"]["field"]) == ("BAD_USER_INPUT", name)
    if message is not None:
        assert refused.message == message
    assert (await failure(contributor, TOOL, {"slug": slug})).code == "NOT_FOUND"


async def test_a_duplicate_field_name_is_refused(contributor: GraphQLClient) -> None:
    script_id = await save_script(contributor, GRADES)
    refused = await failure(contributor, PUBLISH, {"input": _publish_input(script_id, new_slug(), FIELDS + FIELDS[:1])})
    assert (refused.code, refused.message) == ("BAD_USER_INPUT", "threshold: two fields have this name")


async def test_only_admins_review_once_and_a_rejection_says_why(
    contributor: GraphQLClient, admin: GraphQLClient, bob: GraphQLClient
) -> None:
    slug = new_slug()
    version = await publish(contributor, await save_script(contributor, GRADES), slug)
    for reviewer in (contributor, bob):
        refused = await failure(reviewer, REVIEW, {"id": version["id"], "approve": True})
        assert refused.code == "FORBIDDEN"
    assert (await failure(contributor, PENDING, {})).code == "FORBIDDEN"
    refused = await failure(admin, REVIEW, {"id": version["id"], "approve": False})
    assert (refused.code, refused.message) == ("BAD_USER_INPUT", "note: say why the version is rejected")
    assert (await failure(admin, REVIEW, {"id": str(uuid.uuid4()), "approve": True})).code == "NOT_FOUND"
    rejected = await admin.execute(REVIEW, {"id": version["id"], "approve": False, "note": "Explain the pass mark."})
    assert rejected["reviewToolVersion"]["status"] == "REJECTED"
    refused = await failure(admin, REVIEW, {"id": version["id"], "approve": True})
    assert (refused.code, refused.message) == ("CONFLICT", "this version was already reviewed: REJECTED")
    # Rejected: its author still sees (and may try) it; nobody else finds it.
    own = (await contributor.execute(TOOL, {"slug": slug}))["tool"]
    assert (own["latest"], own["versions"]) == (None, [{"version": 1, "status": "REJECTED"}])
    assert (await failure(bob, TOOL, {"slug": slug})).code == "NOT_FOUND"
    refused = await failure(bob, RUN, {"input": {"slug": slug, "version": 1, "values": {}}})
    assert refused.code == "NOT_FOUND"
    [mine] = (await contributor.execute(TOOLS, {"mine": True, "search": slug}))["tools"]["edges"]
    assert mine["node"]["latest"] is None


async def test_the_catalog_is_paged_newest_first_and_searched(
    contributor: GraphQLClient, admin: GraphQLClient, bob: GraphQLClient
) -> None:
    word = uuid.uuid4().hex[:8]
    script_id = await save_script(contributor, GRADES)
    slugs = []
    for n in range(3):
        slug = f"{word}-{n}"
        version = await publish(contributor, script_id, slug, title=f"Tool {n}", description=f"Needle{word} {n}")
        await admin.execute(REVIEW, {"id": version["id"], "approve": True})
        slugs.append(slug)
    seen: list[str] = []
    after = None
    while True:
        page = (await bob.execute(TOOLS, {"first": 2, "after": after, "search": f"needle{word}"}))["tools"]
        seen.extend(edge["node"]["slug"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == slugs[::-1]
    assert (await failure(bob, TOOLS, {"first": 0})).code == "BAD_USER_INPUT"
    assert (await failure(bob, TOOLS, {"after": "nonsense"})).code == "BAD_USER_INPUT"
    assert (await failure(bob, TOOLS, {"search": "a\x00b"})).code == "BAD_USER_INPUT"
    assert (await failure(bob, TOOL, {"slug": "a\x00b"})).code == "NOT_FOUND"
    assert (await bob.execute(TOOLS, {"search": f"100%{word}"}))["tools"]["edges"] == []


async def test_signed_out_callers_see_no_tools(anonymous: GraphQLClient) -> None:
    for query, variables in ((TOOLS, {}), (TOOL, {"slug": "grades"}), (RUN, {"input": {"slug": "x", "values": {}}})):
        assert (await failure(anonymous, query, variables)).code == "UNAUTHENTICATED"


async def test_the_authors_address_is_shown_whole_only_to_the_author_and_admins(
    contributor: GraphQLClient, admin: GraphQLClient, bob: GraphQLClient
) -> None:
    slug = await approved_tool(contributor, admin)
    email = (await contributor.execute("{ me { email } }"))["me"]["email"]
    query = "query($slug: String!) { tool(slug: $slug) { author { id email } } }"
    shown = {}
    for name, client in (("author", contributor), ("admin", admin), ("other", bob)):
        shown[name] = (await client.execute(query, {"slug": slug}))["tool"]["author"]
    assert shown["author"] == shown["admin"] == {"id": contributor.user_id, "email": email}
    assert shown["other"] == {"id": contributor.user_id, "email": email.partition("@")[0]}


async def test_a_run_of_a_tool_shows_its_script_only_to_those_who_may_read_the_tool(
    contributor: GraphQLClient, admin: GraphQLClient, bob: GraphQLClient, anonymous: GraphQLClient
) -> None:
    slug = await approved_tool(contributor, admin)
    script = "query($id: ID!) { execution(id: $id) { script } }"
    share = "mutation($id: ID!) { shareExecution(id: $id) { token } }"
    shared = "query($token: String!) { sharedExecution(token: $token) { script } }"
    bobs = await run_tool(bob, slug, {"threshold": 50})
    authors = await run_tool(contributor, slug, {"threshold": 50})
    # The author keeps the source (sourceVisible false): Bob's own run does not show it, nor does his link.
    assert (await bob.execute(script, {"id": bobs["id"]}))["execution"]["script"] == ""
    token = (await bob.execute(share, {"id": bobs["id"]}))["shareExecution"]["token"]
    assert (await anonymous.execute(shared, {"token": token}))["sharedExecution"]["script"] == ""
    assert (await admin.execute(script, {"id": bobs["id"]}))["execution"]["script"].startswith("VERSION")
    assert (await contributor.execute(script, {"id": authors["id"]}))["execution"]["script"].startswith("VERSION")
