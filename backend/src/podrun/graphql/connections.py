"""What every connection (paged list) shares."""

from __future__ import annotations

import strawberry


@strawberry.type
class PageInfo:
    """Whether there is more, and where to continue."""

    has_next_page: bool
    end_cursor: str | None
