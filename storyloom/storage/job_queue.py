"""Queries over jobs across stories: what fair turns and caps are computed from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storyloom.jobs.fairness import QueuedJob
from storyloom.storage.tables import RenderJobRow, StoryRow
from storyloom.story.model import JobStatus

_QUEUED = RenderJobRow.status == JobStatus.QUEUED.value


async def queued_jobs(session: AsyncSession, workspace_id: str) -> Sequence[QueuedJob]:
    """One workspace's waiting jobs, in request order."""
    query = (
        select(RenderJobRow.id, RenderJobRow.requested_by)
        .join(StoryRow, StoryRow.id == RenderJobRow.story_id)
        .where(_QUEUED, StoryRow.workspace_id == workspace_id)
        .order_by(RenderJobRow.id)
    )
    rows = await session.execute(query)
    return [QueuedJob(job_id, workspace_id, member) for job_id, member in rows]


async def line(session: AsyncSession, served_since: datetime) -> Sequence[QueuedJob]:
    """Every waiting job, and the started jobs touched (heartbeat or end) since
    `served_since`: they set their workspace's turn. In request order."""
    query = (
        select(RenderJobRow.id, StoryRow.workspace_id, RenderJobRow.requested_by, _QUEUED)
        .join(StoryRow, StoryRow.id == RenderJobRow.story_id)
        .where(
            or_(_QUEUED, (RenderJobRow.attempts > 0) & (RenderJobRow.created_at >= served_since))
        )
        .order_by(RenderJobRow.id)
    )
    rows = await session.execute(query)
    return [
        QueuedJob(i, workspace, member, bool(waiting)) for i, workspace, member, waiting in rows
    ]
