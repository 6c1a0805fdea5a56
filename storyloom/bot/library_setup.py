"""The character library of one process: its folder, picture checks and sheets, from the
settings (the composition roots call `character_library`)."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from storyloom.config import Settings
from storyloom.generation.reference_image import MAX_SIDE, clean_reference, reference_name
from storyloom.generation.safety import Detector, SafetyUnavailable
from storyloom.jobs.result_files import local_files
from storyloom.storage.character_folder import CharacterFolder
from storyloom.storage.library_repo import library
from storyloom.story.errors import InvalidInput
from storyloom.story.library_ports import Library
from storyloom.story.model import Character, JobKind, JobStatus, Story
from storyloom.story.ports import Database

log = logging.getLogger(__name__)
SHEET_JOBS = (JobKind.SHEET, JobKind.REROLL)


def clean_sheet(data: bytes) -> bytes:
    """A character file's sheet picture re-encoded as a plain PNG (metadata dropped)."""
    try:
        picture = Image.open(io.BytesIO(data))
        if picture.format != "PNG" or max(picture.size) > MAX_SIDE:
            raise InvalidInput("The character file's sheet.png is not a PNG picture we keep.")
        picture.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InvalidInput("The character file's sheet.png is not a PNG picture.") from None
    out = io.BytesIO()
    picture.convert("RGB").save(out, format="PNG")
    return out.getvalue()


def _sheet_reader(
    db: Database, out_dir: Path
) -> Callable[[Story, Character], Awaitable[bytes | None]]:
    async def sheet_of(story: Story, character: Character) -> bytes | None:
        """The newest drawn sheet of the character, from its job's files."""
        async with db.reading() as uow:
            jobs = await uow.jobs.recent(story.id, 10**4)
        for job in jobs:
            if (
                job.kind in SHEET_JOBS
                and job.character_id == character.id
                and job.status == JobStatus.DONE
            ):
                files, _ = await local_files(db, job, out_dir)
                return await asyncio.to_thread(files[0].read_bytes) if files else None
        return None

    return sheet_of


def _flagged(detector: Callable[[], Detector]) -> Callable[[bytes, str], Awaitable[bool]]:
    async def flagged(picture: bytes, level: str) -> bool:
        """Whether the check flags the picture at this level (`off` keeps anything)."""
        if level == "off":
            return False
        try:
            check = await asyncio.to_thread(detector)
        except SafetyUnavailable as missing:  # no detector on this host: nothing to check with
            log.warning("reference pictures are not checked: %s", missing)
            return False
        image = Image.open(io.BytesIO(picture))
        return bool(await asyncio.to_thread(check, image))

    return flagged


def _nudenet() -> Detector:
    from storyloom.generation.safety import shared_detector

    return shared_detector()


def character_library(
    settings: Settings, db: Database, detector: Callable[[], Detector] | None = None
) -> Library:
    """The library over this process's database and character folder; reference pictures
    pass NudeNet (or `detector`, a test's seam) where it is installed."""
    return Library(
        of=library,
        files=CharacterFolder(Path(settings.character_dir).resolve()),
        clean_reference=clean_reference,
        clean_sheet=clean_sheet,
        file_name=reference_name,
        sheet_of=_sheet_reader(db, Path(settings.output_dir).resolve()),
        flagged=_flagged(detector or _nudenet),
    )
