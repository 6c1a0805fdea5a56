"""The pictures an image adapter conditions a character on: its reference, or its sheet.

A character cast from a reference picture is conditioned on that picture (its lock pass
and its panels). In the ``csa+reference`` identity mode, every panel is also conditioned
on the character's first sheet image, kept beside its store (``<key>.sheet.png``) so any
later render, in any process, finds it; where it is missing, the lock pass (deterministic)
is run again to draw it.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from PIL import Image

from storyloom.generation.reference_image import clean_reference, reference_name
from storyloom.story.errors import InvalidInput, LimitExceeded

IDENTITY_MODES = ("csa", "csa+reference")
_KEEP = 32  # pictures held in memory, least recently used dropped first


class PictureError(ValueError):
    """A character's reference picture cannot be used; the message says which and why."""


class IdentityPictures:
    """Reference pictures read once per file, and sheet images by identity key."""

    def __init__(self, directory: Path | None):
        self.directory = directory
        self._references: OrderedDict[tuple[str, int, int], tuple[str, Image.Image]] = OrderedDict()
        self._sheets: OrderedDict[str, Image.Image] = OrderedDict()
        self._named: OrderedDict[str, Image.Image] = OrderedDict()

    def reference(self, name: str, path: Path) -> tuple[str, Image.Image]:
        """(the picture's sha256 file name, the picture) of ``name``'s reference file; the
        bytes are cleaned first, so the name is that of the clean PNG whatever was given."""
        try:
            stat = path.stat()
            key = (str(path), stat.st_mtime_ns, stat.st_size)
            found = self._references.get(key)
            if found is not None:
                self._references.move_to_end(key)
                return found
            data = path.read_bytes()
        except OSError:
            raise PictureError(f"the reference picture of {name} cannot be read: {path}") from None
        try:
            clean = clean_reference(data)
        except (InvalidInput, LimitExceeded) as error:
            raise PictureError(f"{name}'s reference: {error}") from None
        picture = Image.open(io.BytesIO(clean)).convert("RGB")
        found = (reference_name(clean), picture)
        _remember(self._references, key, found)
        _remember(self._named, found[0], picture)
        return found

    def named(self, name: str) -> Image.Image:
        """A reference picture read earlier, by its sha256 file name."""
        picture = self._named.get(name)
        if picture is None:
            raise PictureError(f"the reference picture {name} was not read by this renderer")
        return picture

    def sheet(self, key: str) -> Image.Image | None:
        """The first sheet image of the identity ``key``, from memory or beside its store."""
        picture = self._sheets.get(key)
        if picture is not None:
            self._sheets.move_to_end(key)
            return picture
        path = self._sheet_path(key)
        if path is None or not path.is_file():
            return None
        try:
            with Image.open(path) as opened:
                picture = opened.convert("RGB")
        except OSError:  # half-written by a crashed process: draw it again
            return None
        _remember(self._sheets, key, picture)
        return picture

    def keep_sheet(self, key: str, picture: Image.Image) -> None:
        """Keep a locked character's first sheet image (in memory, and on disk atomically)."""
        _remember(self._sheets, key, picture)
        path = self._sheet_path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".sheet-", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            picture.save(tmp, format="PNG")
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _sheet_path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{key}.sheet.png"


def _remember(cache: OrderedDict[Any, Any], key: object, value: object) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _KEEP:
        cache.popitem(last=False)
