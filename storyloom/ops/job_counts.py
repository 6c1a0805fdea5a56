"""What the metrics read from the database: jobs by state and the waiting line.

The database is the record of every job (DESIGN.md §2), so these numbers are the same in
every process that reads them, embedded or distributed, whichever process serves them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storyloom.storage.owed import owed_counts
from storyloom.storage.tables import RenderJobRow
from storyloom.story.model import JobStatus


@dataclass(frozen=True)
class JobCounts:
    """Jobs per state (every state present, zero where none) and the oldest waiting job."""

    by_state: dict[JobStatus, int]
    oldest_queued_at: datetime | None
    # owed outcomes (the outbox) by state: pending, failing (pending, failed repeatedly),
    # delivered, impossible
    owed: dict[str, int] = field(default_factory=dict)

    @property
    def queue_length(self) -> int:
        """Jobs waiting for a worker."""
        return self.by_state[JobStatus.QUEUED]

    def oldest_wait_s(self, now: datetime) -> float:
        """How long the oldest waiting job has waited; 0 when none waits."""
        if self.oldest_queued_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_queued_at).total_seconds())


async def count_jobs(engine: AsyncEngine) -> JobCounts:
    """Read the counts in one short read transaction."""
    by_state = dict.fromkeys(JobStatus, 0)
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(RenderJobRow.status, func.count()).group_by(RenderJobRow.status)
        )
        for status, count in rows:
            by_state[JobStatus(status)] = int(count)
        oldest = await connection.scalar(
            select(func.min(RenderJobRow.created_at)).where(
                RenderJobRow.status == JobStatus.QUEUED.value
            )
        )
        owed = await owed_counts(connection)
    return JobCounts(by_state, oldest, owed)
