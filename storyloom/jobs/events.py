"""What the chat side hears about a job: its new status, progress while it renders, and the
files of its result. Free of torch, so a bot that only sends jobs to Redis stays slim."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from storyloom.jobs.progress import JobProgress
from storyloom.story.model import JobStatus, RenderJob


@dataclass(frozen=True)
class JobEvent:
    """A job's new status and, when done, its files (local paths, main result first)."""

    job: RenderJob
    status: JobStatus
    files: tuple[Path, ...] = ()
    error: str | None = None
    progress: JobProgress | None = None  # set on the throttled RUNNING reports of a render
    place: int | None = None  # a QUEUED job's place in the fair line (1 starts next)


Notify = Callable[[JobEvent], Awaitable[None]]
