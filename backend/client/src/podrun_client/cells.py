"""Where one cell ends: a statement typed at the console (as the Python REPL decides), or piped in whole.

Both only decide where to cut; the kernel's Python compiles the cell. A statement this Python cannot parse
(an error, or syntax newer than it knows) still goes to the kernel, which reports it or runs it.
"""

from __future__ import annotations

import ast
import codeop
import warnings


def complete(source: str) -> bool:
    """Whether the lines typed so far make a whole statement (else the console asks for `... ` more).

    The Python REPL's rule (`code.compile_command`): a block is whole after an empty line.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarnings are the kernel's to show
        try:
            return codeop.compile_command(source, "<stdin>", "single") is not None
        except (SyntaxError, OverflowError, ValueError):
            return True


def statements(source: str) -> list[str]:
    """Piped code cut into cells: one per top-level statement, in order (a decorated definition is one).

    Statements that share a line stay together, comments between statements are dropped. Code that does not
    parse here is one cell.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return [source] if source.strip() else []
    spans: list[tuple[int, int]] = []
    for node in tree.body:
        decorators = getattr(node, "decorator_list", [])
        first = min([node.lineno, *(decorator.lineno for decorator in decorators)])
        last = node.end_lineno or node.lineno
        if spans and first <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(last, spans[-1][1]))
        else:
            spans.append((first, last))
    lines = source.splitlines()
    return ["\n".join(lines[first - 1 : last]) for first, last in spans]
