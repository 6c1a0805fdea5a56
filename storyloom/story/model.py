"""The story model: plain frozen values, no framework types.

A story lives in one chat thread, addressed by `ThreadKey` (workspace = Discord guild or
Slack team, channel, thread). Beats are numbered 1..N without gaps; characters carry the
lock state of their look; render jobs are the durable record of every render request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class ThreadKey:
    """Where a story lives; every lookup is scoped by all three parts."""

    workspace_id: str
    channel_id: str
    thread_id: str


@dataclass(frozen=True)
class Actor:
    """Who is speaking and where: supplied by the adapter for every call."""

    workspace_id: str
    channel_id: str
    thread_id: str
    member_id: str
    display_name: str
    is_moderator: bool = False
    roles: frozenset[str] = frozenset()  # the member's role ids (Discord), for who-renders
    # the platform marks the channel age-restricted (Discord's nsfw channels): the only
    # place a server's safety level `off` holds
    age_restricted: bool = False

    @property
    def thread(self) -> ThreadKey:
        """The thread this actor speaks in."""
        return ThreadKey(self.workspace_id, self.channel_id, self.thread_id)


class StoryStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class LockState(StrEnum):
    """A character's look: described, then a sheet is rendered, then members lock it."""

    DRAFT = "draft"
    SHEET_RENDERED = "sheet_rendered"
    LOCKED = "locked"


class JobKind(StrEnum):
    PAGE = "page"
    CLIP = "clip"
    SHEET = "sheet"
    REROLL = "reroll"  # a character's new look (a new seed and sheet)
    PANEL = "panel"  # one beat's panel drawn again (its variant went up)
    # a kind this version does not know (a newer version wrote the row): it is never
    # rendered here, only failed with that reason, reported and cancellable like any job
    UNKNOWN = "unknown"

    @classmethod
    def read(cls, value: str) -> JobKind:
        """The kind stored as `value`; UNKNOWN for one this version does not know."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        """Whether the job may still produce output (and so can be cancelled)."""
        return self in (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class Story:
    id: int
    thread: ThreadKey
    title: str
    style: str
    seed: int
    owner_id: str
    owner_name: str
    status: StoryStatus
    created_at: datetime


@dataclass(frozen=True)
class Beat:
    """One beat as typed: the raw text is stored; scene, cast and caption are parsed from it."""

    id: int
    story_id: int
    position: int
    author_id: str
    author_name: str
    text: str
    created_at: datetime
    edited_at: datetime | None = None
    variant: int = 0  # re-rolls of its panel so far: part of the panel's seed


@dataclass(frozen=True)
class Character:
    id: int
    story_id: int
    name: str
    description: str
    lock_state: LockState
    seed: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    # the clean reference picture's file name (sha256, in Settings.character_dir), if a
    # member gave one: part of the character's identity
    reference: str | None = None


@dataclass(frozen=True)
class RenderJob:
    """The record of one render request; the database row, not the broker, is the truth."""

    id: int
    story_id: int
    kind: JobKind
    status: JobStatus
    requested_by: str
    requested_by_name: str
    created_at: datetime
    updated_at: datetime
    first_position: int | None = None
    last_position: int | None = None
    character_id: int | None = None
    error: str | None = None
    attempts: int = 0  # how many times a worker has started it (a redelivery adds one)
    # whether the chat side has reported its outcome (posted the result, or said it failed
    # or was cancelled): exactly once
    posted: bool = False
    status_ref: str | None = None  # where the chat side shows its status (adapter's format)
    result_files: tuple[str, ...] = ()  # names of the result's files, main result first
    request_key: str | None = None  # the chat request that asked for it (idempotency key)
    safety: str = "block"  # what the worker does with a flagged panel (story/server.SafetyLevel)
    # the beats as they were when it was asked for: a page draws these, whatever is moved,
    # edited or removed while it waits (empty for a sheet, or a job from before 0008)
    beats: tuple[Beat, ...] = ()


@dataclass(frozen=True)
class DeletedStory:
    """What a deleted story leaves on disks: its jobs' files and its cast's identity stores
    (for `Deps.forget_files`, after the rows are gone)."""

    story: Story
    job_ids: tuple[int, ...]
    cast: tuple[Character, ...]


@dataclass(frozen=True)
class BeatPage:
    """One page of a story's beats, for `list`."""

    beats: tuple[Beat, ...]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class StoryOverview:
    """What `status` shows: the story, its size, its cast and its recent jobs."""

    story: Story
    beat_count: int
    characters: tuple[Character, ...]
    jobs: tuple[RenderJob, ...]


@dataclass(frozen=True)
class LookResult:
    """A lock or re-roll: the character after the change, and the job queued, if any."""

    character: Character
    job: RenderJob | None
