"""The character library's values and what it needs from outside: a repository over a unit
of work, a folder of picture files, and the picture checks (which live with the images).

A library character is a server's saved identity spec (name, description, style, seed,
identity prompts, reference picture): a story that casts it with the same style gets the
same identity store key, so its locked look needs no lock pass there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from storyloom.story.model import Character, Story
from storyloom.story.ports import UnitOfWork


@dataclass(frozen=True)
class LibraryCharacter:
    """A character saved in a server's library."""

    id: int
    workspace_id: str
    name: str
    description: str
    style: str
    seed: int
    identity_prompts: tuple[str, ...]
    locked: bool
    reference: str | None  # the clean reference picture's file name, if any
    sheet: str | None  # the sheet picture's file name, if one was drawn
    saved_by: str
    saved_by_name: str
    saved_at: datetime

    def files(self) -> tuple[str, ...]:
        """The picture files this entry keeps in the character folder."""
        return tuple(name for name in (self.reference, self.sheet) if name)


class LibraryRepository(Protocol):
    async def get(self, workspace_id: str, name: str) -> LibraryCharacter | None:
        """The server's entry with this name (case-insensitive)."""
        ...

    async def list(self, workspace_id: str) -> Sequence[LibraryCharacter]:
        """The server's entries, by name."""
        ...

    async def put(self, entry: LibraryCharacter) -> LibraryCharacter:
        """Store an entry (id 0: a new one; else replace the entry with that id)."""
        ...

    async def delete(self, entry_id: int) -> None:
        """Remove an entry."""
        ...

    async def set_reference(self, character_id: int, reference: str | None) -> None:
        """Set a story character's reference picture (a file name, or None)."""
        ...

    async def file_in_use(self, name: str) -> bool:
        """Whether any library entry or story character still keeps this picture file."""
        ...


class CharacterFiles(Protocol):
    """The folder of kept pictures (clean references, library sheets), named by their hash."""

    async def put(self, name: str, data: bytes) -> None:
        """Write a picture (the same name holds the same bytes: writing twice is harmless)."""
        ...

    async def read(self, name: str) -> bytes | None:
        """A picture's bytes, or None if it is not here."""
        ...

    async def remove(self, name: str) -> None:
        """Delete a picture (gone already: nothing to do)."""
        ...


@dataclass(frozen=True)
class Library:
    """What the library's use cases need, built by the composition root."""

    of: Callable[[UnitOfWork], LibraryRepository]
    files: CharacterFiles
    # a member's reference picture, checked and re-encoded as a clean PNG (one-sentence
    # domain errors); the name it is kept under (sha256)
    clean_reference: Callable[[bytes], bytes]
    # a sheet picture from a character file, checked and re-encoded as PNG
    clean_sheet: Callable[[bytes], bytes]
    file_name: Callable[[bytes], str]
    # the character's newest sheet picture (PNG bytes), or None if none was drawn
    sheet_of: Callable[[Story, Character], Awaitable[bytes | None]]
    # the image safety check at a level: True if the picture is flagged (None: no check)
    flagged: Callable[[bytes, str], Awaitable[bool]] | None = None
