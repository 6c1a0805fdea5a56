"""Hand-written in-memory fakes of the core's ports (no mock objects).

`FakeDatabase.writing()` works on a copy of the state and keeps it only if the block
succeeds, like a real transaction, so tests can prove that failed calls change nothing.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from storyloom.story.audit import AuditAction, AuditEntry, NewAuditEntry
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
from storyloom.story.ports import AdmitBeat, NewBeat


@dataclass
class State:
    stories: dict[int, Story] = field(default_factory=dict)
    beats: dict[int, Beat] = field(default_factory=dict)
    characters: dict[int, Character] = field(default_factory=dict)
    jobs: dict[int, RenderJob] = field(default_factory=dict)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


class FakeStories:
    def __init__(self, state: State) -> None:
        self.s = state

    async def get(self, thread: ThreadKey, *, for_update: bool = False) -> Story | None:
        return next((x for x in self.s.stories.values() if x.thread == thread), None)

    async def add(self, thread: ThreadKey, title: str, style: str, seed: int, owner_id: str,
                  owner_name: str, created_at: datetime) -> Story:  # fmt: skip
        story = Story(self.s.new_id(), thread, title, style, seed, owner_id, owner_name,
                      StoryStatus.OPEN, created_at)  # fmt: skip
        self.s.stories[story.id] = story
        return story

    async def update(self, story_id: int, *, style: str | None = None,
                     status: StoryStatus | None = None) -> None:  # fmt: skip
        story = self.s.stories[story_id]
        self.s.stories[story_id] = replace(
            story, style=style or story.style, status=status or story.status
        )

    async def by_id(self, story_id: int) -> Story | None:
        return self.s.stories.get(story_id)

    async def delete(self, story_id: int) -> None:
        del self.s.stories[story_id]
        for table in (self.s.beats, self.s.characters, self.s.jobs):
            for key in [k for k, v in table.items() if v.story_id == story_id]:
                del table[key]


class FakeBeats:
    def __init__(self, state: State) -> None:
        self.s = state

    def _of(self, story_id: int) -> list[Beat]:
        return sorted((b for b in self.s.beats.values() if b.story_id == story_id),
                      key=lambda b: b.position)  # fmt: skip

    async def count(self, story_id: int) -> int:
        return len(self._of(story_id))

    async def add(self, story_id: int, position: int, author_id: str, author_name: str,
                  text: str, created_at: datetime) -> Beat:  # fmt: skip
        assert all(b.position != position for b in self._of(story_id)), "duplicate position"
        beat = Beat(self.s.new_id(), story_id, position, author_id, author_name, text, created_at)
        self.s.beats[beat.id] = beat
        return beat

    async def get(self, story_id: int, position: int) -> Beat | None:
        return next((b for b in self._of(story_id) if b.position == position), None)

    async def by_id(self, story_id: int, beat_id: int) -> Beat | None:
        return next((b for b in self._of(story_id) if b.id == beat_id), None)

    async def page(self, story_id: int, offset: int, limit: int) -> Sequence[Beat]:
        return self._of(story_id)[offset : offset + limit]

    async def last_by(self, story_id: int, author_id: str) -> Beat | None:
        mine = [b for b in self._of(story_id) if b.author_id == author_id]
        return max(mine, key=lambda b: b.id, default=None)

    async def set_text(self, beat_id: int, text: str, edited_at: datetime) -> None:
        self.s.beats[beat_id] = replace(self.s.beats[beat_id], text=text, edited_at=edited_at)

    def _renumber(self, ordered: list[Beat]) -> None:
        for i, beat in enumerate(ordered, 1):
            self.s.beats[beat.id] = replace(beat, position=i)

    async def remove(self, story_id: int, position: int) -> None:
        ordered = self._of(story_id)
        del self.s.beats[ordered.pop(position - 1).id]
        self._renumber(ordered)

    async def move(self, story_id: int, position: int, to_position: int) -> None:
        ordered = self._of(story_id)
        ordered.insert(to_position - 1, ordered.pop(position - 1))
        self._renumber(ordered)

    async def set_variant(self, beat_id: int, variant: int) -> None:
        self.s.beats[beat_id] = replace(self.s.beats[beat_id], variant=variant)


class FakeCharacters:
    def __init__(self, state: State) -> None:
        self.s = state

    async def list(self, story_id: int) -> Sequence[Character]:
        return sorted((c for c in self.s.characters.values() if c.story_id == story_id),
                      key=lambda c: c.id)  # fmt: skip

    async def add(self, story_id: int, name: str, description: str, seed: int,
                  created_by: str, created_at: datetime) -> Character:  # fmt: skip
        character = Character(self.s.new_id(), story_id, name, description, LockState.DRAFT,
                              seed, created_by, created_at, created_at)  # fmt: skip
        self.s.characters[character.id] = character
        return character

    async def update(self, character_id: int, updated_at: datetime, *,
                     description: str | None = None, seed: int | None = None,
                     lock_state: LockState | None = None) -> Character:  # fmt: skip
        old = self.s.characters[character_id]
        new = replace(
            old, description=description if description is not None else old.description,
            seed=seed if seed is not None else old.seed,
            lock_state=lock_state or old.lock_state, updated_at=updated_at,
        )  # fmt: skip
        self.s.characters[character_id] = new
        return new

    async def reset_looks(self, story_id: int, updated_at: datetime) -> None:
        for c in await self.list(story_id):
            await self.update(c.id, updated_at, lock_state=LockState.DRAFT)


class FakeJobs:
    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, story_id: int, kind: JobKind, requested_by: str,
                  requested_by_name: str, created_at: datetime, *,
                  first_position: int | None = None, last_position: int | None = None,
                  character_id: int | None = None, request_key: str | None = None,
                  safety: str = "block", beats: Sequence[Beat] = ()) -> RenderJob:  # fmt: skip
        job = RenderJob(self.s.new_id(), story_id, kind, JobStatus.QUEUED, requested_by,
                        requested_by_name, created_at, created_at, first_position,
                        last_position, character_id, request_key=request_key,
                        safety=safety, beats=tuple(beats))  # fmt: skip
        self.s.jobs[job.id] = job
        return job

    async def by_request(self, story_id: int, request_key: str) -> RenderJob | None:
        return next((j for j in sorted(self.s.jobs.values(), key=lambda j: -j.id)
                     if j.story_id == story_id and j.request_key == request_key
                     and j.status.active), None)  # fmt: skip

    async def get(self, story_id: int, job_id: int) -> RenderJob | None:
        job = self.s.jobs.get(job_id)
        return job if job is not None and job.story_id == story_id else None

    async def recent(self, story_id: int, limit: int) -> Sequence[RenderJob]:
        mine = [j for j in self.s.jobs.values() if j.story_id == story_id]
        return sorted(mine, key=lambda j: -j.id)[:limit]

    async def find(self, job_id: int) -> RenderJob | None:
        return self.s.jobs.get(job_id)

    async def set_status(
        self, job_id: int, status: JobStatus, updated_at: datetime, *, error: str | None = None,
        files: Sequence[str] = (),
    ) -> None:  # fmt: skip
        self.s.jobs[job_id] = replace(
            self.s.jobs[job_id], status=status, updated_at=updated_at, error=error,
            result_files=tuple(files),
        )  # fmt: skip

    async def set_status_ref(self, job_id: int, ref: str) -> None:
        self.s.jobs[job_id] = replace(self.s.jobs[job_id], status_ref=ref)

    async def claim_status_ref(self, job_id: int, claim: str, seen: str | None = None) -> bool:
        if self.s.jobs[job_id].status_ref != seen:
            return False
        self.s.jobs[job_id] = replace(self.s.jobs[job_id], status_ref=claim)
        return True

    async def claim(self, job_id: int, seen: RenderJob, updated_at: datetime) -> bool:
        job = self.s.jobs[job_id]
        if (job.status, job.attempts) != (seen.status, seen.attempts):
            return False
        self.s.jobs[job_id] = replace(job, status=JobStatus.RUNNING, attempts=job.attempts + 1,
                                      updated_at=updated_at, error=None)  # fmt: skip
        return True

    async def release(self, seen: RenderJob, updated_at: datetime) -> bool:
        job = self.s.jobs[seen.id]
        if (job.status, job.attempts) != (JobStatus.RUNNING, seen.attempts + 1):
            return False
        self.s.jobs[seen.id] = replace(job, status=JobStatus.QUEUED, attempts=seen.attempts,
                                       updated_at=updated_at)  # fmt: skip
        return True

    async def heartbeat(self, job_id: int, updated_at: datetime) -> None:
        if self.s.jobs[job_id].status == JobStatus.RUNNING:
            self.s.jobs[job_id] = replace(self.s.jobs[job_id], updated_at=updated_at)

    async def touch_queued(self, job_id: int, updated_at: datetime) -> None:
        if self.s.jobs[job_id].status == JobStatus.QUEUED:
            self.s.jobs[job_id] = replace(self.s.jobs[job_id], updated_at=updated_at)

    async def mark_posted(self, job_id: int) -> bool:
        job = self.s.jobs[job_id]
        if job.status.active or job.posted:
            return False
        self.s.jobs[job_id] = replace(job, posted=True)
        return True

    async def unmark_posted(self, job_id: int) -> None:
        self.s.jobs[job_id] = replace(self.s.jobs[job_id], posted=False)

    async def unposted(self) -> Sequence[RenderJob]:
        ended = [j for j in self.s.jobs.values() if not j.status.active and not j.posted]
        return sorted(ended, key=lambda j: j.id)

    async def stale(
        self, queued_before: datetime | None, running_before: datetime
    ) -> Sequence[RenderJob]:
        cutoff = {JobStatus.RUNNING: running_before}
        if queued_before is not None:
            cutoff[JobStatus.QUEUED] = queued_before
        found = [j for j in self.s.jobs.values()
                 if j.status in cutoff and j.updated_at < cutoff[j.status]]  # fmt: skip
        return sorted(found, key=lambda j: j.id)


class FakeServers:
    def __init__(self, state: State) -> None:
        self.s = state

    async def changes(self, workspace_id: str) -> dict[str, Any]:
        return dict(self.s.servers.get(workspace_id, {}))

    async def put(self, workspace_id: str, changes: dict[str, Any], by: str,
                  at: datetime) -> None:  # fmt: skip
        self.s.servers[workspace_id] = dict(changes)


class FakeAudit:
    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, entry: NewAuditEntry) -> None:
        self.s.audit.append(AuditEntry(**vars(entry), id=self.s.new_id()))

    async def recent(self, workspace_id: str, limit: int) -> Sequence[AuditEntry]:
        mine = [e for e in self.s.audit if e.workspace_id == workspace_id]
        return sorted(mine, key=lambda e: -e.id)[:limit]

    async def forget_text(self, story_id: int) -> None:
        self.s.audit = [replace(e, detail=None, actor_name=None) if e.story_id == story_id
                        else e for e in self.s.audit]  # fmt: skip


class FakeUnitOfWork:
    def __init__(self, state: State) -> None:
        self.stories = FakeStories(state)
        self.beats = FakeBeats(state)
        self.characters = FakeCharacters(state)
        self.jobs = FakeJobs(state)
        self.servers = FakeServers(state)
        self.audit = FakeAudit(state)


class FakeDatabase:
    def __init__(self) -> None:
        self.state = State()
        self.commits = 0

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[FakeUnitOfWork]:
        yield FakeUnitOfWork(copy.deepcopy(self.state))

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[FakeUnitOfWork]:
        draft = copy.deepcopy(self.state)
        yield FakeUnitOfWork(draft)
        self.state = draft  # reached only when the block raised nothing
        self.commits += 1

    async def append_beat(self, beat: NewBeat, admit: AdmitBeat) -> Beat:
        async with self.writing() as uow:
            found = await uow.stories.get(beat.thread)
            cast = await uow.characters.list(found.id) if found else ()
            count = await uow.beats.count(found.id) if found else 0
            story = admit(found, cast, count, await uow.servers.changes(beat.thread.workspace_id))
            added = await uow.beats.add(story.id, count + 1, beat.author_id, beat.author_name,
                                        beat.text, beat.created_at)  # fmt: skip
            await uow.audit.add(NewAuditEntry(
                beat.thread.workspace_id, beat.created_at, AuditAction.BEAT_ADDED,
                beat.author_id, beat.author_name, story_id=story.id,
                target=f"beat {added.position}", detail=beat.text,
            ))  # fmt: skip
            return added


class FakeQueue:
    """Records submitted job ids, and the committed state each one saw."""

    def __init__(self, database: FakeDatabase) -> None:
        self.database = database
        self.submitted: list[int] = []
        self.committed_when_submitted: list[bool] = []

    async def submit(self, job_id: int) -> None:
        self.submitted.append(job_id)
        self.committed_when_submitted.append(job_id in self.database.state.jobs)


class SentIds:
    """A JobQueue that delivers nothing and records what was sent: jobs recorded while no
    worker runs, or a test that runs the worker by hand."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    async def submit(self, job_id: int) -> None:
        self.ids.append(job_id)
