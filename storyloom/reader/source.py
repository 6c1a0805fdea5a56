"""What a shared story's reader shows, read from the database, and its result files' bytes.

The pages are the latest finished page render's; each character's sheet its latest finished
sheet (or re-roll); the clip the latest finished clip. A file is named by a job id and its
place in that job's list of result files, both read from the database: no part of a request
ever becomes a path. Bytes come from the chat side's output folder (where a posted result
is kept) or, for a result not written there yet, from the database's copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from storyloom.jobs.result_files import job_folder
from storyloom.storage.repositories import job_value
from storyloom.storage.tables import JobArtifactRow, RenderJobRow, ShareLinkRow
from storyloom.storage.unit_of_work import session_of
from storyloom.story.model import Beat, Character, JobKind, JobStatus, RenderJob, Story
from storyloom.story.ports import Database, UnitOfWork


@dataclass(frozen=True)
class StoredFile:
    """A result file: which job made it and its name in that job's list."""

    job_id: int
    name: str


@dataclass(frozen=True)
class StoryContent:
    """A story's reader content as stored: the files to show and the words around them."""

    story: Story
    pages: tuple[StoredFile, ...]
    beats: tuple[Beat, ...]  # the rendered pages' beats, in order
    cast: tuple[tuple[Character, tuple[StoredFile, ...]], ...]
    clip: StoredFile | None


def _plain_name(name: str) -> bool:
    # names come from workers' rows; still, never let one climb out of its job's folder
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def _files(job: RenderJob | None, prefix: str, suffix: str) -> tuple[StoredFile, ...]:
    if job is None:
        return ()
    return tuple(
        StoredFile(job.id, name)
        for name in job.result_files
        if _plain_name(name) and name.startswith(prefix) and name.endswith(suffix)
    )


async def _latest_done(
    uow: UnitOfWork, story_id: int, kinds: Sequence[JobKind], character_id: int | None = None
) -> RenderJob | None:
    query = select(RenderJobRow).where(
        RenderJobRow.story_id == story_id,
        RenderJobRow.status == JobStatus.DONE.value,
        RenderJobRow.kind.in_([kind.value for kind in kinds]),
    )
    if character_id is not None:
        query = query.where(RenderJobRow.character_id == character_id)
    row = (
        await session_of(uow).execute(query.order_by(RenderJobRow.id.desc()).limit(1))
    ).scalar_one_or_none()
    return None if row is None else job_value(row)


async def load_content(db: Database, story_id: int) -> StoryContent | None:
    """The story's reader content, or None if the story is gone."""
    async with db.reading() as uow:
        story = await uow.stories.by_id(story_id)
        if story is None:
            return None
        page_job = await _latest_done(uow, story_id, [JobKind.PAGE])
        beats: Sequence[Beat] = ()
        if page_job is not None and page_job.first_position and page_job.last_position:
            first, last = page_job.first_position, page_job.last_position
            beats = await uow.beats.page(story_id, first - 1, last - first + 1)
        cast = []
        for character in await uow.characters.list(story_id):
            sheet = await _latest_done(uow, story_id, [JobKind.SHEET, JobKind.REROLL], character.id)
            cast.append((character, _files(sheet, "sheet-", ".png")))
        clip_job = await _latest_done(uow, story_id, [JobKind.CLIP])
        clips = _files(clip_job, "", ".mp4")
        return StoryContent(
            story,
            _files(page_job, "story-page-", ".png"),
            tuple(beats),
            tuple(cast),
            clips[0] if clips else None,
        )


def local_path(out_dir: Path, stored: StoredFile) -> Path:
    """Where the chat side keeps a result file (it may not be there)."""
    return job_folder(out_dir, stored.job_id) / stored.name


async def stored_bytes(db: Database, stored: StoredFile) -> bytes | None:
    """The database's copy of a result file, if it still has one."""
    query = select(JobArtifactRow.data).where(
        JobArtifactRow.job_id == stored.job_id, JobArtifactRow.name == stored.name
    )
    async with db.reading() as uow:
        data = (await session_of(uow).execute(query)).scalar_one_or_none()
    return None if data is None else bytes(data)


async def shown_jobs(db: Database) -> frozenset[int]:
    """The jobs whose files some live share link's reader shows: retention keeps them."""
    query = select(ShareLinkRow.story_id).where(ShareLinkRow.revoked_at.is_(None)).distinct()
    async with db.reading() as uow:
        story_ids = (await session_of(uow).execute(query)).scalars().all()
    shown: set[int] = set()
    for story_id in story_ids:
        content = await load_content(db, story_id)
        if content is None:
            continue
        files = [*content.pages, *(f for _, sheet in content.cast for f in sheet)]
        if content.clip is not None:
            files.append(content.clip)
        shown.update(f.job_id for f in files)
    return frozenset(shown)
