"""What the core needs from the outside world, as small Protocols.

Storage implements `Database` (a unit of work per transaction); the jobs layer implements
`JobQueue`. Unit tests use hand-written in-memory fakes of both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from storyloom.story.audit import AuditEntry, NewAuditEntry
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


class StoryRepository(Protocol):
    async def get(self, thread: ThreadKey, *, for_update: bool = False) -> Story | None:
        """The story of this thread; `for_update` locks it until the transaction ends."""
        ...

    async def add(
        self,
        thread: ThreadKey,
        title: str,
        style: str,
        seed: int,
        owner_id: str,
        owner_name: str,
        created_at: datetime,
    ) -> Story:
        """Create the story of a thread (status open)."""
        ...

    async def update(
        self, story_id: int, *, style: str | None = None, status: StoryStatus | None = None
    ) -> None:
        """Change a story's settings."""
        ...

    async def by_id(self, story_id: int) -> Story | None:
        """A story by its id: for workers, which hold a job's story id and no thread."""
        ...

    async def delete(self, story_id: int) -> None:
        """Delete a story with its beats, characters and job records."""
        ...


class BeatRepository(Protocol):
    async def count(self, story_id: int) -> int:
        """How many beats the story has (positions are 1..count)."""
        ...

    async def add(
        self,
        story_id: int,
        position: int,
        author_id: str,
        author_name: str,
        text: str,
        created_at: datetime,
    ) -> Beat:
        """Store a beat at `position` (the caller holds the story lock)."""
        ...

    async def get(self, story_id: int, position: int) -> Beat | None:
        """The beat at `position`."""
        ...

    async def by_id(self, story_id: int, beat_id: int) -> Beat | None:
        """The beat with this id in this story, wherever it is now (None once removed)."""
        ...

    async def page(self, story_id: int, offset: int, limit: int) -> Sequence[Beat]:
        """Beats in position order, `limit` of them from `offset`."""
        ...

    async def last_by(self, story_id: int, author_id: str) -> Beat | None:
        """The author's most recently created beat still in the story."""
        ...

    async def set_text(self, beat_id: int, text: str, edited_at: datetime) -> None:
        """Replace a beat's text."""
        ...

    async def remove(self, story_id: int, position: int) -> None:
        """Delete the beat at `position` and close the gap (later beats move up one)."""
        ...

    async def move(self, story_id: int, position: int, to_position: int) -> None:
        """Move a beat, shifting the beats in between by one."""
        ...

    async def set_variant(self, beat_id: int, variant: int) -> None:
        """Record how many times the beat's panel has been re-rolled."""
        ...


class CharacterRepository(Protocol):
    async def list(self, story_id: int) -> Sequence[Character]:
        """The story's cast, oldest first."""
        ...

    async def add(
        self,
        story_id: int,
        name: str,
        description: str,
        seed: int,
        created_by: str,
        created_at: datetime,
    ) -> Character:
        """Add a character (lock state draft)."""
        ...

    async def update(
        self,
        character_id: int,
        updated_at: datetime,
        *,
        description: str | None = None,
        seed: int | None = None,
        lock_state: LockState | None = None,
    ) -> Character:
        """Change a character and return it."""
        ...

    async def reset_looks(self, story_id: int, updated_at: datetime) -> None:
        """Put every character of the story back to draft (their looks no longer hold)."""
        ...


class JobRepository(Protocol):
    async def add(
        self,
        story_id: int,
        kind: JobKind,
        requested_by: str,
        requested_by_name: str,
        created_at: datetime,
        *,
        first_position: int | None = None,
        last_position: int | None = None,
        character_id: int | None = None,
        request_key: str | None = None,
        safety: str = "block",
        beats: Sequence[Beat] = (),
    ) -> RenderJob:
        """Record a queued job (`safety`: what its worker does with a flagged panel; with the
        beats it draws, as they are now)."""
        ...

    async def by_request(self, story_id: int, request_key: str) -> RenderJob | None:
        """The story's job for this chat request while it is queued or running (a finished
        one does not stand in the way of asking again)."""
        ...

    async def get(self, story_id: int, job_id: int) -> RenderJob | None:
        """A job of this story (never of another)."""
        ...

    async def recent(self, story_id: int, limit: int) -> Sequence[RenderJob]:
        """The story's newest jobs first."""
        ...

    async def find(self, job_id: int) -> RenderJob | None:
        """A job by its id alone: for workers, which receive nothing else."""
        ...

    async def set_status(
        self,
        job_id: int,
        status: JobStatus,
        updated_at: datetime,
        *,
        error: str | None = None,
        files: Sequence[str] = (),
    ) -> None:
        """Move a job to `status` (with the reason, for a failed job; the result's file
        names, for a done one)."""
        ...

    async def set_status_ref(self, job_id: int, ref: str) -> None:
        """Record where the chat side shows the job's status message."""
        ...

    async def claim_status_ref(self, job_id: int, claim: str, seen: str | None = None) -> bool:
        """Set the job's status reference to `claim` if it is still `seen` (None: it has
        none); whether it did (one status message per job, whatever the number of
        concurrent requests)."""
        ...

    async def claim(self, job_id: int, seen: RenderJob, updated_at: datetime) -> bool:
        """Mark the job running and count an attempt, only if its row still has the status
        and attempts of `seen` (so two workers cannot both start it); whether it did."""
        ...

    async def release(self, seen: RenderJob, updated_at: datetime) -> bool:
        """Put a job this worker claimed (`seen`: its row as read before the claim) back in
        line, its attempt not counted: a stop is not a lost worker. False if the row has
        moved on (cancelled, ended, or taken over by another worker)."""
        ...

    async def heartbeat(self, job_id: int, updated_at: datetime) -> None:
        """Touch a running job's `updated_at`: its worker is alive."""
        ...

    async def touch_queued(self, job_id: int, updated_at: datetime) -> None:
        """Set a still-queued job's `updated_at` (it was just sent again)."""
        ...

    async def mark_posted(self, job_id: int) -> bool:
        """Record that an ended job's outcome was reported; False if it already was (or the
        job has not ended)."""
        ...

    async def unmark_posted(self, job_id: int) -> None:
        """Undo `mark_posted`: reporting failed, so it is to be tried again."""
        ...

    async def unposted(self) -> Sequence[RenderJob]:
        """Ended jobs whose outcome has not been reported yet, oldest first."""
        ...

    async def stale(
        self, queued_before: datetime | None, running_before: datetime
    ) -> Sequence[RenderJob]:
        """Queued jobs not touched since `queued_before` (none when it is None) and running
        jobs whose worker has not sent a heartbeat since `running_before`, oldest first."""
        ...


class ServerRepository(Protocol):
    async def changes(self, workspace_id: str) -> dict[str, Any]:
        """The settings a server's moderators changed (empty: all defaults)."""
        ...

    async def put(self, workspace_id: str, changes: dict[str, Any], by: str, at: datetime) -> None:
        """Store a server's changed settings (replacing the previous ones)."""
        ...


class AuditRepository(Protocol):
    async def add(self, entry: NewAuditEntry) -> None:
        """Record an entry."""
        ...

    async def recent(self, workspace_id: str, limit: int) -> Sequence[AuditEntry]:
        """A server's newest entries first."""
        ...

    async def forget_text(self, story_id: int) -> None:
        """Clear the text and names of a story's entries (its ids stay)."""
        ...


@dataclass(frozen=True)
class NewBeat:
    """A beat to append at the end of a thread's story."""

    thread: ThreadKey
    author_id: str
    author_name: str
    text: str
    created_at: datetime
    # the chat request that adds it (a Slack event id, a Discord interaction id): the same
    # request again returns the beat it added instead of adding another
    request_key: str | None = None


# Decides, inside the transaction that appends a beat, whether the story as it stands (or
# None: no story in the thread), its cast, its beat count and its server's changed
# settings (`ServerRepository.changes`: the server's own word list) admit it: returns the
# story, or raises the domain error that refuses the beat. Pure and synchronous: storage
# may run it on a database thread, between the statements of a batch.
AdmitBeat = Callable[[Story | None, Sequence[Character], int, dict[str, Any]], Story]


class UnitOfWork(Protocol):
    """One transaction's repositories (read-only members, so implementations may narrow them)."""

    @property
    def stories(self) -> StoryRepository: ...
    @property
    def beats(self) -> BeatRepository: ...
    @property
    def characters(self) -> CharacterRepository: ...
    @property
    def jobs(self) -> JobRepository: ...
    @property
    def servers(self) -> ServerRepository: ...
    @property
    def audit(self) -> AuditRepository: ...


class Database(Protocol):
    """Opens units of work. A writing one commits on success and rolls back on any error."""

    def reading(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A read-only unit of work."""
        ...

    def writing(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A write transaction; nothing inside it may await the network."""
        ...

    async def append_beat(self, beat: NewBeat, admit: AdmitBeat) -> Beat:
        """Append the beat at position count + 1 if `admit` lets it, with its audit entry
        (story/audit.py: beat.added, the text as detail), and commit. Adds that arrive
        together may share one transaction, but each gets its own beat or error."""
        ...


class JobQueue(Protocol):
    """Hands a recorded job to the workers; called only after its transaction committed."""

    async def submit(self, job_id: int) -> None:
        """Queue the job with this id."""
        ...
