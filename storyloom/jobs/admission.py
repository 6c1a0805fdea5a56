"""The fair line and the caps on the SQL database.

Caps are checked in the new job's own write transaction, serialised per workspace (BEGIN
IMMEDIATE on SQLite, an advisory lock on PostgreSQL), so two requests cannot both slip under
them. Workers start the job at the head of the fair line,
whichever job's message woke them (see `LocalWorker.pick_next`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from storyloom.config import Settings
from storyloom.jobs.fairness import JobLimits, QueuedJob, check_caps, fair_order, queue_positions
from storyloom.jobs.progress import JobProgress
from storyloom.storage.engine import SqlDatabase
from storyloom.storage.job_progress import write_progress
from storyloom.storage.job_queue import LineEntry, line, lock_line, queued_jobs
from storyloom.storage.unit_of_work import session_of
from storyloom.story.model import Actor
from storyloom.story.ports import UnitOfWork
from storyloom.story.render_limits import RenderLimits

# Jobs served this recently still count toward their workspace's turn: long enough to
# cover a busy hour, short enough that yesterday's renders do not hold a server back.
SERVED_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class JobAdmission:
    """The service's `admit_job` hook: refuses a job over the member or workspace cap."""

    limits: JobLimits = field(default_factory=JobLimits)

    @classmethod
    def from_settings(cls, settings: Settings) -> JobAdmission:
        """The caps the operator configured."""
        return cls(JobLimits(settings.max_waiting_per_member, settings.max_waiting_per_workspace))

    async def __call__(self, uow: UnitOfWork, actor: Actor) -> None:
        """Raise `LimitExceeded` if the actor may not queue another job now (the caps are
        the server's own where its moderators set them, else the operator's)."""
        await lock_line(session_of(uow), actor.workspace_id)
        changed = await uow.servers.changes(actor.workspace_id)
        limits = JobLimits(
            int(changed.get("max_waiting_per_member", self.limits.per_member)),
            int(changed.get("max_waiting_per_workspace", self.limits.per_workspace)),
        )
        queued = await queued_jobs(session_of(uow), actor.workspace_id)
        check_caps(_as_queued(queued), actor, limits)


def render_limits(settings: Settings) -> RenderLimits:
    """The caps on one job the operator configured, with the size and steps they bound."""
    return RenderLimits(
        max_panels=settings.max_panels_per_job,
        max_clip_seconds=settings.max_clip_seconds,
        max_clip_frames=settings.max_clip_frames,
        max_pixels=settings.max_panel_pixels,
        max_steps=settings.max_steps,
        width=settings.width,
        height=settings.height,
        steps=settings.steps,
    )


async def head_of_line(uow: UnitOfWork, now: datetime) -> int | None:
    """The id of the waiting job whose turn it is, or None if none waits."""
    order = fair_order(_as_queued(await line(session_of(uow), now - SERVED_WINDOW)))
    return order[0] if order else None


async def positions(db: SqlDatabase, now: datetime) -> dict[int, int]:
    """Every waiting job's place in the fair line (1 starts next)."""
    async with db.reading() as uow:
        return queue_positions(_as_queued(await line(session_of(uow), now - SERVED_WINDOW)))


def _as_queued(entries: Sequence[LineEntry]) -> list[QueuedJob]:
    return [QueuedJob(*entry) for entry in entries]


async def store_progress(uow: UnitOfWork, job_id: int, progress: JobProgress) -> None:
    """Write a running job's progress to its row (`LocalWorker.store_progress`)."""
    text = progress.to_json()
    await write_progress(session_of(uow), job_id, progress.percent, text, progress.preview)
