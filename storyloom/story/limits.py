"""Limits and input checks shared by the use cases; each failure says what to change."""

from __future__ import annotations

import re
import unicodedata

from storyloom.story.errors import InvalidInput, LimitExceeded

MAX_BEAT_CHARS = 500
MAX_BEATS = 300
MAX_CHARACTERS = 8
MAX_PER_BEAT = 4
MAX_NAME_CHARS = 32
MAX_TITLE_CHARS = 100
MAX_DESCRIPTION_CHARS = 300
MAX_PAGE_SIZE = 50

# Letters and digits in any script, single spaces between words.
NAME_PATTERN = re.compile(r"[^\W_]+(?: [^\W_]+)*")
_ALLOWED_CONTROLS = frozenset("\n\t")


def clean_name(raw: str) -> str:
    """A character name with outer spaces trimmed and inner runs collapsed, or InvalidInput."""
    name = " ".join(raw.split())
    if not (1 <= len(name) <= MAX_NAME_CHARS) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            f"Character names are 1–{MAX_NAME_CHARS} letters, digits or spaces (got {raw!r})."
        )
    return name


def name_key(name: str) -> str:
    """The case-insensitive key under which a name is unique within a story."""
    return " ".join(name.split()).casefold()


def clean_text(raw: str, what: str, limit: int) -> str:
    """Trimmed free text, checked for length and control characters (kept otherwise as typed)."""
    text = raw.strip()
    if not text:
        raise InvalidInput(f"The {what} is empty.")
    if len(text) > limit:
        raise LimitExceeded(
            f"The {what} is {len(text)} characters; the limit is {limit}. Shorten it."
        )
    # NUL and other control characters cannot be stored by every backend and never help.
    if any(unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS for c in text):
        raise InvalidInput(f"The {what} contains control characters; send plain text.")
    return text


def check_page_size(per_page: int) -> None:
    """Page sizes stay small enough to post in one message."""
    if not 1 <= per_page <= MAX_PAGE_SIZE:
        raise InvalidInput(f"Pages hold 1–{MAX_PAGE_SIZE} beats.")
