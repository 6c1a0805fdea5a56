"""The character folder: kept pictures (clean references, library sheets) by file name.

Names are SHA-256 hex + `.png`, made by the library itself; anything else is refused, so a
name from a database row or a file can never reach outside the folder.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from pathlib import Path

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
            await asyncio.to_thread(_write_whole, path, data)

    async def read(self, name: str) -> bytes | None:
        """The picture's bytes, or None if it is not here."""
        try:
            return await asyncio.to_thread(self.path(name).read_bytes)
        except FileNotFoundError:
            return None

    async def remove(self, name: str) -> None:
        """Delete the picture (gone already: nothing to do)."""
        self.path(name).unlink(missing_ok=True)


def _write_whole(path: Path, data: bytes) -> None:
    """Through a temporary file beside it, renamed over: a reader never sees half a picture.
    (Here rather than generation/export's writer: storage imports no generation code.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    partial.write_bytes(data)
    os.replace(partial, path)
