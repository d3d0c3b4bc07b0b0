"""What every connection (paged list) shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import strawberry


class Edge(Protocol):
    """An edge of any connection: it knows its cursor."""

    cursor: str


@strawberry.type
class PageInfo:
    """Whether there is more, and where to continue."""

    has_next_page: bool
    end_cursor: str | None

    @classmethod
    def after(cls, edges: Sequence[Edge], has_next_page: bool) -> PageInfo:
        """The page info of a page holding `edges`: it continues after the last one."""
        return cls(has_next_page=has_next_page, end_cursor=edges[-1].cursor if edges else None)
