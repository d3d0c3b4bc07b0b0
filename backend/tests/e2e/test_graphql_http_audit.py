"""graphql-http's own GraphQL-over-HTTP audit (`auditServer`, run with Node) against the running API: no warnings.

Also the two media types side by side, so a change of the `application/json` answers (200 for GraphQL errors, which
existing clients rely on) fails here and not only in the audit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from podrun.app.graphql_media import GRAPHQL_RESPONSE

AUDIT = Path(__file__).with_name("graphql_http_audit.mjs")
PACKAGE = Path(__file__).parents[3] / "frontend" / "node_modules" / "graphql-http" / "package.json"
SETUP = "run `./taskw setup:web` (it installs the web client's npm packages, graphql-http among them)"


def test_graphql_http_audit_has_no_errors_or_warnings(podrun: str) -> None:
    node = shutil.which("node")
    assert node is not None, f"node is not on PATH: install Node >= 20, then {SETUP}"
    assert PACKAGE.is_file(), f"the npm package graphql-http is missing ({PACKAGE}): {SETUP}"
    finished = subprocess.run(
        [node, str(AUDIT), f"{podrun}/graphql"], capture_output=True, text=True, timeout=120, check=False
    )
    assert finished.returncode == 0, f"the audit failed to run:\n{finished.stderr}"
    results = json.loads(finished.stdout)
    failing = [
        f"{row['status']} {row['id']} {row['name']}: {row['reason']}" for row in results if row["status"] != "ok"
    ]
    assert not failing, "graphql-http audit:\n" + "\n".join(failing)
    assert len(results) >= 50, results


@pytest.mark.parametrize(
    ("body", "accept", "status", "has_data"),
    [
        ({"query": "{ __typename }"}, GRAPHQL_RESPONSE, 200, True),
        ({"query": "{"}, GRAPHQL_RESPONSE, 400, False),
        ({"query": "{ noSuchField }"}, GRAPHQL_RESPONSE, 400, False),
        ({"query": "query($id: ID!) { __typename }", "variables": {"id": None}}, GRAPHQL_RESPONSE, 400, False),
        ({"query": "{"}, "application/json", 200, True),
        ({"query": "{ noSuchField }"}, "application/json", 200, True),
        ({"query": "{ noSuchField }"}, "*/*", 200, True),
        ({"query": "{ noSuchField }"}, f"{GRAPHQL_RESPONSE}, application/json", 400, False),
        ({"query": "{ noSuchField }"}, f"{GRAPHQL_RESPONSE};q=0.5, application/json", 200, True),
    ],
)
def test_media_types_and_status_codes(
    podrun: str, body: dict[str, object], accept: str, status: int, has_data: bool
) -> None:
    response = httpx.post(f"{podrun}/graphql", json=body, headers={"accept": accept})
    assert response.status_code == status, response.text
    media_type = (
        GRAPHQL_RESPONSE
        if accept.startswith(f"{GRAPHQL_RESPONSE},") or accept == GRAPHQL_RESPONSE
        else "application/json"
    )
    assert response.headers["content-type"].startswith(media_type)
    assert ("data" in response.json()) is has_data


def test_a_field_error_with_graphql_response_json_stays_200(podrun: str) -> None:
    """An executed operation answers 200 even when a resolver refused and `data` came back null (no credentials)."""
    response = httpx.post(
        f"{podrun}/graphql", json={"query": "{ mySettings { __typename } }"}, headers={"accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert response.json()["data"] is None
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_bad_json_with_graphql_response_json_is_a_400_with_errors(podrun: str) -> None:
    response = httpx.post(
        f"{podrun}/graphql",
        content=b'{ "not a JSON',
        headers={"accept": GRAPHQL_RESPONSE, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert response.json() == {"errors": [{"message": "Unable to parse request body as JSON"}]}
