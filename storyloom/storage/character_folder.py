"""The character folder: kept pictures (clean references, library sheets) by file name.

Names are SHA-256 hex + `.png`, made by the library itself; anything else is refused, so a
name from a database row or a file can never reach outside the folder.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from storyloom.generation.export import write_bytes

FILE_NAME = re.compile(r"[0-9a-f]{64}\.png")


class CharacterFolder:
    """Implements the core's `CharacterFiles` over a folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        """Where the picture `name` is kept (a ValueError for a name not of ours)."""
        if not FILE_NAME.fullmatch(name):
            raise ValueError(f"not a kept picture's name: {name!r}")
        return self.directory / name

    async def put(self, name: str, data: bytes) -> None:
        """Write the picture (atomically: a reader never sees half a file)."""
        path = self.path(name)
        if not path.is_file():
            await asyncio.to_thread(write_bytes, path, data)

    async def read(self, name: str) -> bytes | None:
        """The picture's bytes, or None if it is not here."""
        try:
            return await asyncio.to_thread(self.path(name).read_bytes)
        except FileNotFoundError:
            return None

    async def remove(self, name: str) -> None:
        """Delete the picture (gone already: nothing to do)."""
        self.path(name).unlink(missing_ok=True)
