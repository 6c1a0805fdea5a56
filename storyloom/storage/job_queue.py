"""Queries over jobs across stories: what fair turns and caps are computed from (by
jobs/fairness, which this module does not import: storage depends on nothing above it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storyloom.storage.tables import RenderJobRow, StoryRow
from storyloom.story.model import JobStatus


class LineEntry(NamedTuple):
    """A job as the line sees it (jobs/fairness.QueuedJob has the same fields)."""

    id: int
    workspace_id: str
    requested_by: str
    waiting: bool  # queued; else started recently (it counts toward its workspace's turn)


_QUEUED = RenderJobRow.status == JobStatus.QUEUED.value
# The first key of our advisory locks on PostgreSQL: admission to a workspace's line.
_ADMISSION_LOCKS = 0x5710


async def lock_line(session: AsyncSession, workspace_id: str) -> None:
    """Serialise admission to one workspace's line until this transaction ends, so two
    requests cannot both count the waiting jobs before either adds its own (member caps
    are within a workspace, so this one lock serves both caps).

    PostgreSQL: a transaction-scoped advisory lock on the workspace (a row lock would
    need a row per workspace; two stories of one workspace lock different rows). SQLite:
    nothing to do, write transactions begin IMMEDIATE and so already run one at a time."""
    if session.get_bind().dialect.name == "postgresql":
        key = func.hashtext(workspace_id)
        await session.execute(select(func.pg_advisory_xact_lock(_ADMISSION_LOCKS, key)))


async def queued_jobs(session: AsyncSession, workspace_id: str) -> Sequence[LineEntry]:
    """One workspace's waiting jobs, in request order."""
    query = (
        select(RenderJobRow.id, RenderJobRow.requested_by)
        .join(StoryRow, StoryRow.id == RenderJobRow.story_id)
        .where(_QUEUED, StoryRow.workspace_id == workspace_id)
        .order_by(RenderJobRow.id)
    )
    rows = await session.execute(query)
    return [LineEntry(job_id, workspace_id, member, True) for job_id, member in rows]


async def line(session: AsyncSession, served_since: datetime) -> Sequence[LineEntry]:
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
        LineEntry(i, workspace, member, bool(waiting)) for i, workspace, member, waiting in rows
    ]
