"""Repositories: SQL in, the core's frozen values out. Every query is scoped by story (and
the story by workspace, channel and thread), so nothing crosses threads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, delete, func, insert, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from storyloom.storage.tables import BeatRow, CharacterRow, RenderJobRow, StoryRow
from storyloom.story.errors import Conflict
from storyloom.story.limits import name_key
from storyloom.story.model import (
    Beat,
    Character,
    JobKind,
    JobStatus,
    LockState,
    RenderJob,
    Story,
    StoryStatus,
    ThreadKey,
)


def _story(row: StoryRow) -> Story:
    return Story(
        id=row.id,
        thread=ThreadKey(row.workspace_id, row.channel_id, row.thread_id),
        title=row.title,
        style=row.style,
        seed=row.seed,
        owner_id=row.owner_id,
        owner_name=row.owner_name,
        status=StoryStatus(row.status),
        created_at=row.created_at,
    )


def _beat(row: BeatRow) -> Beat:
    return Beat(
        row.id, row.story_id, row.position, row.author_id, row.author_name, row.text,
        row.created_at, row.edited_at, row.variant,
    )  # fmt: skip


def beat_value(row: BeatRow) -> Beat:
    """The core's value of a beat row."""
    return _beat(row)


def beat_by_request(story_id: int, request_key: str) -> Select[Any]:
    """The story's beat added by this chat request (a redelivered one finds it)."""
    return select(BeatRow).where(BeatRow.story_id == story_id, BeatRow.request_key == request_key)


def _character(row: CharacterRow) -> Character:
    return Character(
        row.id, row.story_id, row.name, row.description, LockState(row.lock_state), row.seed,
        row.created_by, row.created_at, row.updated_at, row.reference,
    )  # fmt: skip


def job_value(row: RenderJobRow) -> RenderJob:
    """The core's value of a job row."""
    return RenderJob(
        id=row.id,
        story_id=row.story_id,
        kind=JobKind.read(row.kind),
        status=JobStatus(row.status),
        requested_by=row.requested_by,
        requested_by_name=row.requested_by_name,
        created_at=row.created_at,
        updated_at=row.updated_at,
        first_position=row.first_position,
        last_position=row.last_position,
        character_id=row.character_id,
        error=row.error,
        attempts=row.attempts,
        posted=row.posted,
        status_ref=row.status_ref,
        result_files=tuple(json.loads(row.result_files)) if row.result_files else (),
        request_key=row.request_key,
        safety=row.safety,
        beats=_snapshot_beats(row),
    )


_SNAPSHOT_FIELDS = ("id", "position", "author_id", "author_name", "text", "variant")


def _snapshot(beats: Sequence[Beat]) -> str | None:
    """The beats a job draws, as stored on its row (what they say, not just where)."""
    if not beats:
        return None
    return json.dumps([{f: getattr(b, f) for f in _SNAPSHOT_FIELDS} for b in beats])


def _snapshot_beats(row: RenderJobRow) -> tuple[Beat, ...]:
    if not row.beats:
        return ()
    fields = ({f: b[f] for f in _SNAPSHOT_FIELDS} for b in json.loads(row.beats))
    return tuple(Beat(story_id=row.story_id, created_at=row.created_at, **f) for f in fields)


class SqlStories:
    def __init__(self, session: AsyncSession, *, lock_rows: bool) -> None:
        self._session = session
        self._lock_rows = lock_rows

    async def get(self, thread: ThreadKey, *, for_update: bool = False) -> Story | None:
        """The story of this thread; `for_update` takes a row lock where the backend has them."""
        query = select(StoryRow).where(
            StoryRow.workspace_id == thread.workspace_id,
            StoryRow.channel_id == thread.channel_id,
            StoryRow.thread_id == thread.thread_id,
        )
        if for_update and self._lock_rows:
            query = query.with_for_update()
        row = (await self._session.execute(query)).scalar_one_or_none()
        return None if row is None else _story(row)

    async def add(
        self, thread: ThreadKey, title: str, style: str, seed: int, owner_id: str,
        owner_name: str, created_at: datetime,
    ) -> Story:  # fmt: skip
        """Insert the story; a concurrent insert for the same thread becomes a Conflict."""
        row = StoryRow(
            workspace_id=thread.workspace_id, channel_id=thread.channel_id,
            thread_id=thread.thread_id, title=title, style=style, seed=seed,
            owner_id=owner_id, owner_name=owner_name, status=StoryStatus.OPEN.value,
            created_at=created_at,
        )  # fmt: skip
        self._session.add(row)
        try:
            await self._session.flush()
        except IntegrityError:
            raise Conflict("This thread already has a story.") from None
        return _story(row)

    async def update(
        self, story_id: int, *, style: str | None = None, status: StoryStatus | None = None
    ) -> None:
        """Change the given fields."""
        values: dict[str, Any] = {}
        if style is not None:
            values["style"] = style
        if status is not None:
            values["status"] = status.value
        if values:
            await self._session.execute(
                update(StoryRow).where(StoryRow.id == story_id).values(**values)
            )

    async def by_id(self, story_id: int) -> Story | None:
        """A story by id (workers hold a job's story id, not its thread)."""
        row = await self._session.get(StoryRow, story_id)
        return None if row is None else _story(row)

    async def delete(self, story_id: int) -> None:
        """Delete the story; foreign keys cascade to beats, characters and jobs."""
        await self._session.execute(delete(StoryRow).where(StoryRow.id == story_id))


class SqlBeats:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def count(self, story_id: int) -> int:
        """Number of beats (positions are contiguous, so also the last position)."""
        query = select(func.count()).select_from(BeatRow).where(BeatRow.story_id == story_id)
        return (await self._session.execute(query)).scalar_one()

    async def add(
        self, story_id: int, position: int, author_id: str, author_name: str, text: str,
        created_at: datetime,
    ) -> Beat:  # fmt: skip
        """Insert one beat at `position`."""
        values = dict(
            story_id=story_id, position=position, author_id=author_id,
            author_name=author_name, text=text, created_at=created_at,
        )  # fmt: skip
        result = await self._session.execute(insert(BeatRow).values(**values).returning(BeatRow.id))
        return Beat(result.scalar_one(), story_id, position, author_id, author_name, text,
                    created_at)  # fmt: skip

    async def get(self, story_id: int, position: int) -> Beat | None:
        """The beat at `position` in this story."""
        query = select(BeatRow).where(BeatRow.story_id == story_id, BeatRow.position == position)
        row = (await self._session.execute(query)).scalar_one_or_none()
        return None if row is None else _beat(row)

    async def by_id(self, story_id: int, beat_id: int) -> Beat | None:
        """The beat with this id in this story, wherever it is now."""
        query = select(BeatRow).where(BeatRow.story_id == story_id, BeatRow.id == beat_id)
        row = (await self._session.execute(query)).scalar_one_or_none()
        return None if row is None else _beat(row)

    async def page(self, story_id: int, offset: int, limit: int) -> Sequence[Beat]:
        """Beats in position order."""
        query = (
            select(BeatRow)
            .where(BeatRow.story_id == story_id)
            .order_by(BeatRow.position)
            .offset(offset)
            .limit(limit)
        )
        return [_beat(row) for row in (await self._session.execute(query)).scalars()]

    async def last_by(self, story_id: int, author_id: str) -> Beat | None:
        """The author's newest beat (ids only grow within a story)."""
        query = (
            select(BeatRow)
            .where(BeatRow.story_id == story_id, BeatRow.author_id == author_id)
            .order_by(BeatRow.id.desc())
            .limit(1)
        )
        row = (await self._session.execute(query)).scalar_one_or_none()
        return None if row is None else _beat(row)

    async def set_text(self, beat_id: int, text: str, edited_at: datetime) -> None:
        """Replace the text."""
        await self._session.execute(
            update(BeatRow).where(BeatRow.id == beat_id).values(text=text, edited_at=edited_at)
        )

    async def remove(self, story_id: int, position: int) -> None:
        """Delete the beat and move every later beat up one."""
        await self._session.execute(
            delete(BeatRow).where(BeatRow.story_id == story_id, BeatRow.position == position)
        )
        await self._shift(story_id, BeatRow.position > position, -1)

    async def move(self, story_id: int, position: int, to_position: int) -> None:
        """Park the beat at 0, shift the ones in between, then drop it in its new place."""
        if position == to_position:
            return
        here = (BeatRow.story_id == story_id) & (BeatRow.position == position)
        await self._session.execute(update(BeatRow).where(here).values(position=0))
        if position < to_position:
            between = BeatRow.position.between(position + 1, to_position)
            await self._shift(story_id, between, -1)
        else:
            await self._shift(story_id, BeatRow.position.between(to_position, position - 1), 1)
        parked = (BeatRow.story_id == story_id) & (BeatRow.position == 0)
        await self._session.execute(update(BeatRow).where(parked).values(position=to_position))

    async def set_variant(self, beat_id: int, variant: int) -> None:
        """Record the panel's re-roll count."""
        await self._session.execute(
            update(BeatRow).where(BeatRow.id == beat_id).values(variant=variant)
        )

    async def _shift(self, story_id: int, which: Any, by: int) -> None:
        # Two passes through negative numbers: the unique (story, position) pair is checked
        # row by row, so shifting in place would collide with a neighbour mid-update.
        mine = BeatRow.story_id == story_id
        await self._session.execute(
            update(BeatRow).where(mine, which).values(position=-(BeatRow.position + by))
        )
        await self._session.execute(
            update(BeatRow).where(mine, BeatRow.position < 0).values(position=-BeatRow.position)
        )


class SqlCharacters:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def list(self, story_id: int) -> Sequence[Character]:
        """The cast in the order it was added."""
        query = select(CharacterRow).where(CharacterRow.story_id == story_id)
        rows = (await self._session.execute(query.order_by(CharacterRow.id))).scalars()
        return [_character(row) for row in rows]

    async def add(
        self, story_id: int, name: str, description: str, seed: int, created_by: str,
        created_at: datetime,
    ) -> Character:  # fmt: skip
        """Insert a character in draft."""
        row = CharacterRow(
            story_id=story_id, name=name, name_key=name_key(name), description=description,
            lock_state=LockState.DRAFT.value, seed=seed, created_by=created_by,
            created_at=created_at, updated_at=created_at,
        )  # fmt: skip
        self._session.add(row)
        await self._session.flush()
        return _character(row)

    async def update(
        self, character_id: int, updated_at: datetime, *, description: str | None = None,
        seed: int | None = None, lock_state: LockState | None = None,
    ) -> Character:  # fmt: skip
        """Change the given fields and return the character."""
        row = await self._session.get_one(CharacterRow, character_id)
        if description is not None:
            row.description = description
        if seed is not None:
            row.seed = seed
        if lock_state is not None:
            row.lock_state = lock_state.value
        row.updated_at = updated_at
        await self._session.flush()
        return _character(row)

    async def reset_looks(self, story_id: int, updated_at: datetime) -> None:
        """Every character of the story back to draft."""
        await self._session.execute(
            update(CharacterRow)
            .where(CharacterRow.story_id == story_id)
            .values(lock_state=LockState.DRAFT.value, updated_at=updated_at)
            .execution_options(synchronize_session="fetch")
        )


_ENDED = RenderJobRow.status.in_(
    [JobStatus.DONE.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value]
)


class SqlJobs:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, story_id: int, kind: JobKind, requested_by: str, requested_by_name: str,
        created_at: datetime, *, first_position: int | None = None,
        last_position: int | None = None, character_id: int | None = None,
        request_key: str | None = None, safety: str = "block", beats: Sequence[Beat] = (),
    ) -> RenderJob:  # fmt: skip
        """Record a queued job (with the beats it draws, as they are now)."""
        row = RenderJobRow(
            story_id=story_id, kind=kind.value, status=JobStatus.QUEUED.value,
            first_position=first_position, last_position=last_position,
            character_id=character_id, requested_by=requested_by, request_key=request_key,
            requested_by_name=requested_by_name, created_at=created_at, updated_at=created_at,
            attempts=0, posted=False, safety=safety, beats=_snapshot(beats),
        )  # fmt: skip
        self._session.add(row)
        await self._session.flush()
        return job_value(row)

    async def by_request(self, story_id: int, request_key: str) -> RenderJob | None:
        """The story's newest active job for this request key."""
        query = (
            select(RenderJobRow)
            .where(
                RenderJobRow.story_id == story_id,
                RenderJobRow.request_key == request_key,
                RenderJobRow.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
            )
            .order_by(RenderJobRow.id.desc())
            .limit(1)
        )
        row = (await self._session.execute(query)).scalar_one_or_none()
        return None if row is None else job_value(row)

    async def get(self, story_id: int, job_id: int) -> RenderJob | None:
        """The job, only if it belongs to this story."""
        query = select(RenderJobRow).where(
            RenderJobRow.id == job_id, RenderJobRow.story_id == story_id
        )
        row = (await self._session.execute(query)).scalar_one_or_none()
        return None if row is None else job_value(row)

    async def recent(self, story_id: int, limit: int) -> Sequence[RenderJob]:
        """Newest first."""
        query = (
            select(RenderJobRow)
            .where(RenderJobRow.story_id == story_id)
            .order_by(RenderJobRow.id.desc())
            .limit(limit)
        )
        return [job_value(row) for row in (await self._session.execute(query)).scalars()]

    async def find(self, job_id: int) -> RenderJob | None:
        """A job by id alone (workers receive nothing else)."""
        row = await self._session.get(RenderJobRow, job_id)
        return None if row is None else job_value(row)

    async def set_status(
        self, job_id: int, status: JobStatus, updated_at: datetime, *, error: str | None = None,
        files: Sequence[str] = (),
    ) -> None:  # fmt: skip
        """Move the job to `status`, recording the reason of a failure or the result's files."""
        await self._session.execute(
            update(RenderJobRow)
            .where(RenderJobRow.id == job_id)
            .values(
                status=status.value,
                updated_at=updated_at,
                error=error,
                result_files=json.dumps(list(files)) if files else None,
            )
        )

    async def set_status_ref(self, job_id: int, ref: str) -> None:
        """Record where the job's status message is."""
        await self._session.execute(
            update(RenderJobRow).where(RenderJobRow.id == job_id).values(status_ref=ref)
        )

    async def claim_status_ref(self, job_id: int, claim: str, seen: str | None = None) -> bool:
        """Compare-and-set: the job's `status_ref` is still `seen` (None: it has no status
        message yet), and now `claim` stands for the one being posted; whether this call
        set it."""
        current = (
            RenderJobRow.status_ref.is_(None) if seen is None else RenderJobRow.status_ref == seen
        )
        result = await self._session.execute(
            update(RenderJobRow).where(RenderJobRow.id == job_id, current).values(status_ref=claim)
        )
        return cast(CursorResult[Any], result).rowcount == 1

    async def claim(self, job_id: int, seen: RenderJob, updated_at: datetime) -> bool:
        """Compare-and-set on (status, attempts): one conditional UPDATE, so it holds on
        PostgreSQL too, where reading then writing in one transaction would not."""
        result = await self._session.execute(
            update(RenderJobRow)
            .where(
                RenderJobRow.id == job_id,
                RenderJobRow.status == seen.status.value,
                RenderJobRow.attempts == seen.attempts,
            )
            .values(
                status=JobStatus.RUNNING.value,
                attempts=RenderJobRow.attempts + 1,
                updated_at=updated_at,
                error=None,
            )
        )
        return cast(CursorResult[Any], result).rowcount == 1

    async def release(self, seen: RenderJob, updated_at: datetime) -> bool:
        """Running (on the attempt claimed after `seen`) → queued, in one conditional UPDATE."""
        result = await self._session.execute(
            update(RenderJobRow)
            .where(
                RenderJobRow.id == seen.id,
                RenderJobRow.status == JobStatus.RUNNING.value,
                RenderJobRow.attempts == seen.attempts + 1,
            )
            .values(
                status=JobStatus.QUEUED.value,
                attempts=seen.attempts,
                updated_at=updated_at,
                progress_percent=None,
                progress_text=None,
                progress_preview=None,
            )
        )
        return cast(CursorResult[Any], result).rowcount == 1

    async def heartbeat(self, job_id: int, updated_at: datetime) -> None:
        """Touch the running job's `updated_at`."""
        await self._session.execute(
            update(RenderJobRow)
            .where(RenderJobRow.id == job_id, RenderJobRow.status == JobStatus.RUNNING.value)
            .values(updated_at=updated_at)
        )

    async def touch_queued(self, job_id: int, updated_at: datetime) -> None:
        """Stamp a job sent again, only while it still waits."""
        await self._session.execute(
            update(RenderJobRow)
            .where(RenderJobRow.id == job_id, RenderJobRow.status == JobStatus.QUEUED.value)
            .values(updated_at=updated_at)
        )

    async def mark_posted(self, job_id: int) -> bool:
        """Set `posted` once: the condition on the old value makes a second call a no-op.
        (`updated_at` is left as it is: for an ended job, when it ended.)"""
        result = await self._session.execute(
            update(RenderJobRow)
            .where(RenderJobRow.id == job_id, _ENDED, RenderJobRow.posted.is_(False))
            .values(posted=True)
        )
        return cast(CursorResult[Any], result).rowcount == 1

    async def unmark_posted(self, job_id: int) -> None:
        """Clear `posted` so the outcome is reported again."""
        await self._session.execute(
            update(RenderJobRow).where(RenderJobRow.id == job_id).values(posted=False)
        )

    async def unposted(self) -> Sequence[RenderJob]:
        """Ended, not yet reported, oldest first."""
        query = (
            select(RenderJobRow)
            .where(_ENDED, RenderJobRow.posted.is_(False))
            .order_by(RenderJobRow.id)
        )
        return [job_value(row) for row in (await self._session.execute(query)).scalars()]

    async def stale(
        self, queued_before: datetime | None, running_before: datetime
    ) -> Sequence[RenderJob]:
        """Queued and untouched (unless `queued_before` is None), or running without a recent
        heartbeat; oldest first."""
        lost: ColumnElement[bool] = (RenderJobRow.status == JobStatus.RUNNING.value) & (
            RenderJobRow.updated_at < running_before
        )
        if queued_before is not None:
            waiting = (RenderJobRow.status == JobStatus.QUEUED.value) & (
                RenderJobRow.updated_at < queued_before
            )
            lost = or_(waiting, lost)
        query = select(RenderJobRow).where(lost).order_by(RenderJobRow.id)
        return [job_value(row) for row in (await self._session.execute(query)).scalars()]
