"""What a chat side follows of its jobs: the queries behind `jobs.watcher`, and the files of
results kept in the database for a chat side on another machine than the worker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storyloom.storage.owed import PENDING
from storyloom.storage.repositories import job_value
from storyloom.storage.tables import JobArtifactRow, OwedMessageRow, RenderJobRow, StoryRow
from storyloom.story.model import JobStatus, RenderJob

_ACTIVE = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]
_KNOWN = [status.value for status in JobStatus]


@dataclass(frozen=True)
class WatchedJob:
    """A job the chat side has something to say about, with where it lives."""

    job: RenderJob
    workspace_id: str
    progress: str | None  # the worker's last report (JobProgress.to_json), while running
    channel_id: str = ""
    preview: bytes | None = None  # the worker's last preview image, while running

    @property
    def lane(self) -> str:
        """Where its messages go, in order: its story's workspace and channel."""
        return f"{self.workspace_id}/{self.channel_id}"


async def watched_jobs(session: AsyncSession) -> Sequence[WatchedJob]:
    """Every queued or running job, and every ended job whose outcome is not reported yet,
    in request order."""
    query = (
        select(RenderJobRow, StoryRow.workspace_id, StoryRow.channel_id)
        .join(StoryRow, StoryRow.id == RenderJobRow.story_id)
        .where(
            or_(
                RenderJobRow.status.in_(_ACTIVE),
                # a status this version does not know is left out (see `unknown_statuses`)
                RenderJobRow.posted.is_(False) & RenderJobRow.status.in_(_KNOWN),
            )
        )
        .order_by(RenderJobRow.id)
    )
    rows = (await session.execute(query)).all()
    running = JobStatus.RUNNING.value
    return [
        WatchedJob(
            job_value(row),
            workspace,
            row.progress_text if row.status == running else None,
            channel,
            row.progress_preview if row.status == running else None,
        )
        for row, workspace, channel in rows
    ]


async def unknown_statuses(session: AsyncSession) -> Sequence[tuple[int, str]]:
    """(id, status) of every job whose status this version does not know (a newer version
    wrote it): the watcher fails them with that reason rather than stop on them."""
    query = select(RenderJobRow.id, RenderJobRow.status).where(RenderJobRow.status.not_in(_KNOWN))
    return [(job_id, status) for job_id, status in await session.execute(query)]


async def save_artifacts(session: AsyncSession, job_id: int, files: Sequence[Path]) -> None:
    """Store a job's result files (replacing any from an earlier attempt)."""
    await session.execute(delete(JobArtifactRow).where(JobArtifactRow.job_id == job_id))
    session.add_all(
        JobArtifactRow(job_id=job_id, name=path.name, data=path.read_bytes()) for path in files
    )
    await session.flush()


async def load_artifacts(session: AsyncSession, job_id: int) -> dict[str, bytes]:
    """A job's stored result files by name."""
    query = select(JobArtifactRow.name, JobArtifactRow.data).where(JobArtifactRow.job_id == job_id)
    return {name: bytes(data) for name, data in await session.execute(query)}


async def drop_artifacts(session: AsyncSession, job_id: int) -> None:
    """Forget a job's stored files (its result was posted; the chat side keeps its copy)."""
    await session.execute(delete(JobArtifactRow).where(JobArtifactRow.job_id == job_id))


async def drop_posted_artifacts(session: AsyncSession) -> int:
    """Forget the stored files of every job already posted (a bot stopped between posting
    and forgetting leaves them behind); how many files. A result still owed keeps them."""
    owed = select(OwedMessageRow.job_id).where(OwedMessageRow.state == PENDING)
    posted = select(RenderJobRow.id).where(
        RenderJobRow.posted.is_(True), RenderJobRow.id.not_in(owed)
    )
    result = await session.execute(delete(JobArtifactRow).where(JobArtifactRow.job_id.in_(posted)))
    return int(getattr(result, "rowcount", 0) or 0)
