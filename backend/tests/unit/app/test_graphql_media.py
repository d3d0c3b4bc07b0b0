"""The JSON of responses and WebSocket messages: what the stdlib's would say, as UTF-8."""

from __future__ import annotations

import json

import pytest

from podrun.app.graphql_media import encode_json


@pytest.mark.parametrize(
    "data",
    [
        {"data": {"lines": [{"seq": 1, "text": ""}, {"seq": 2, "text": 'tab\t"quoted" \\ é \u2028 \x00 \x7f'}]}},
        {"errors": [{"message": "no", "path": ["a", 0], "extensions": {"code": "X", "retryAfterMs": 1000}}]},
        {"data": None, "flag": True, "ratio": 0.5},
    ],
    ids=["lines", "errors", "scalars"],
)
def test_the_same_json_as_the_stdlib(data: object) -> None:
    encoded = encode_json(data)
    assert json.loads(encoded) == data
    assert encoded == json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def test_a_lone_surrogate_is_escaped() -> None:
    data = {"text": "half \ud800 a pair"}
    assert encode_json(data) == '{"text":"half \\ud800 a pair"}'
