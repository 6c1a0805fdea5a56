"""What every chat adapter says about the character library, in one wording. `quote` is the
adapter's escaping for member text (names, descriptions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from storyloom.story.library import Cast
from storyloom.story.library_ports import LibraryCharacter

Quote = Callable[[str], str]
USAGE = "/character save NAME | list [PAGE] | show NAME | delete NAME | export NAME | import FILE"
EMPTY = "This server's library is empty; save a story's character with /character save NAME."


def _look(entry: LibraryCharacter) -> str:
    return "look locked" if entry.locked else "look not locked"


def line(entry: LibraryCharacter, quote: Quote) -> str:
    """One entry in a listing."""
    picture = ", reference picture" if entry.reference else ""
    return (
        f"{quote(entry.name)} ({entry.style}, {_look(entry)}{picture}): "
        f"{quote(entry.description)} — saved by {quote(entry.saved_by_name)}"
    )


def saved(entry: LibraryCharacter, quote: Quote) -> str:
    """The answer to /character save."""
    return (
        f"{quote(entry.name)} is in this server's library ({_look(entry)}); "
        f"`/story cast {quote(entry.name)}` casts them in any story here."
    )


def imported(entry: LibraryCharacter, quote: Quote) -> str:
    """The answer to /character import."""
    return f"Imported {quote(entry.name)} into this server's library ({_look(entry)})."


def deleted(entry: LibraryCharacter, quote: Quote) -> str:
    """The answer to /character delete."""
    return f"{quote(entry.name)} is no longer in this server's library."


def shown(entry: LibraryCharacter, has_sheet: bool, quote: Quote) -> str:
    """The text of /character show (the sheet picture goes with it, if any)."""
    sheet = "" if has_sheet else "\nNo sheet picture is kept for this character."
    return line(entry, quote) + f"\nseed {entry.seed}" + sheet


def cast(result: Cast, quote: Quote, bold: Quote = str) -> str:
    """The answer to /story cast, saying where the character came from (`bold`: the
    adapter's bold, for the name)."""
    name = bold(quote(result.character.name))
    picture = " with a reference picture" if result.character.reference else ""
    if result.entry is None:
        return f"{name} is in the cast{picture}"
    if result.kept_lock:
        library = f"{name} is in the cast from this server's library{picture}"
        return f"{library}: look locked, no sheet to draw."
    why = "it was not locked" if not result.entry.locked else "this story draws in another style"
    return (
        f"{name} is in the cast from this server's library{picture}; {why}, so draw a sheet "
        f"with `/story look {quote(result.character.name)}`."
    )


def listing_lines(entries: Sequence[LibraryCharacter], quote: Quote) -> list[str]:
    """Every entry as a line, by name."""
    return [line(entry, quote) for entry in entries]
