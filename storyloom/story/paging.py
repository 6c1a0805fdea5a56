"""Long lists in short messages: lines packed into pages that fit a platform's limit.

Chat platforms refuse a message over their length limit (Discord: 2,000 characters), so a
list is cut by characters, not by a count of items: ten 500-character beats fill several
pages. A single line longer than a page is clipped with an ellipsis, never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storyloom.story.errors import InvalidInput

ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ELLIPSIS))].rstrip() + ELLIPSIS


def pack(lines: Sequence[str], room: int) -> list[list[str]]:
    """The lines in order, in as few pages as fit: each page's lines, joined by newlines, are
    at most `room` characters."""
    pages: list[list[str]] = [[]]
    used = 0
    for raw in lines:
        line = clip(raw, room)
        needed = len(line) + (1 if pages[-1] else 0)
        if pages[-1] and used + needed > room:
            pages.append([])
            used, needed = 0, len(line)
        pages[-1].append(line)
        used += needed
    return pages


@dataclass(frozen=True)
class Paged:
    """One page of a packed list, and where it sits among the others."""

    lines: tuple[str, ...]
    page: int
    pages: int


def page_of(lines: Sequence[str], page: int, room: int) -> Paged:
    """Page `page` (from 1) of `lines` packed into pages of `room` characters; a page that
    does not exist is refused with the range that does."""
    pages = pack(lines, room)
    if not 1 <= page <= len(pages):
        raise InvalidInput(f"Pick a page from 1 to {len(pages)}.")
    return Paged(tuple(pages[page - 1]), page, len(pages))
