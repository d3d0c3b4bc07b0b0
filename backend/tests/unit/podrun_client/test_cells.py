"""Where `prun kernel` cuts cells: typed statements as the Python REPL does, piped code by top-level statement."""

from __future__ import annotations

import pytest
from podrun_client.cells import complete, statements


@pytest.mark.parametrize(
    ("typed", "whole"),
    [
        pytest.param("x = 41", True, id="simple"),
        pytest.param("a = 1; b = 2", True, id="two-on-a-line"),
        pytest.param("for i in range(3):", False, id="block-opened"),
        pytest.param("for i in range(3):\n    print(i)", False, id="block-until-an-empty-line"),
        pytest.param("for i in range(3):\n    print(i)\n", True, id="block-closed"),
        pytest.param("while True: pass", False, id="one-line-block-too"),
        pytest.param("x = (1,", False, id="open-bracket"),
        pytest.param('s = """one', False, id="open-string"),
        pytest.param("def f(:", True, id="error-goes-to-the-kernel"),
        pytest.param("  x = 1", True, id="indented-error-too"),
    ],
)
def test_a_typed_statement_is_whole_when_python_would_run_it(typed: str, whole: bool) -> None:
    assert complete(typed) is whole


PIPED = """import os  # a comment stays with its line

# a comment between statements is dropped
x = 41
@decorator
@other
def f(a):

    return a  # the blank line inside is kept
pair = (1,
 2); after = 3
print(x + 1)
"""


def test_piped_code_is_one_cell_per_top_level_statement() -> None:
    assert statements(PIPED) == [
        "import os  # a comment stays with its line",
        "x = 41",
        "@decorator\n@other\ndef f(a):\n\n    return a  # the blank line inside is kept",
        "pair = (1,\n 2); after = 3",
        "print(x + 1)",
    ]


@pytest.mark.parametrize(
    ("piped", "cells"),
    [
        pytest.param("def f(:\n    pass\n", ["def f(:\n    pass\n"], id="unparsable-is-one-cell"),
        pytest.param("", [], id="nothing"),
        pytest.param("\n  \n# only a comment\n", [], id="no-statement"),
    ],
)
def test_piped_code_that_parses_not_or_holds_nothing(piped: str, cells: list[str]) -> None:
    assert statements(piped) == cells
