"""What a restarted bot does first: post what finished while it was down, and re-send jobs
that never reached a worker. Both read the rows: the broker may have lost its messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from storyloom.story.model import JobStatus, RenderJob
from storyloom.story.ports import Database, JobQueue
from storyloom.story.service import utc_now


async def pending_posts(db: Database) -> Sequence[RenderJob]:
    """Done jobs whose results have not been posted yet, oldest first."""
    async with db.reading() as uow:
        return await uow.jobs.unposted()


async def mark_posted(db: Database, job_id: int) -> bool:
    """Record that the job's result was posted; False if it already was (post nothing)."""
    async with db.writing() as uow:
        return await uow.jobs.mark_posted(job_id)


async def requeue_stale(
    db: Database,
    queue: JobQueue,
    *,
    queued_for: timedelta = timedelta(minutes=2),
    heartbeat_lost_for: timedelta = timedelta(minutes=2),
) -> list[int]:
    """Send again the jobs queued longer than `queued_for` and those running without a
    heartbeat for `heartbeat_lost_for`; return their ids. A duplicate message is harmless:
    the worker that receives it reads the row and skips a job already taken or done."""
    now = utc_now()
    async with db.reading() as uow:
        stale = await uow.jobs.stale(now - queued_for, now - heartbeat_lost_for)
    for job in stale:  # after the read committed: never await the broker inside it
        await queue.submit(job.id)
    waiting = [job.id for job in stale if job.status == JobStatus.QUEUED]
    if waiting:
        # sent again now: not stale again before another `queued_for` (a long line must not
        # be re-sent on every round); running ones are not touched, that would fake a
        # heartbeat and keep the next worker from taking them over
        async with db.writing() as uow:
            for job_id in waiting:
                await uow.jobs.touch_queued(job_id, now)
    return [job.id for job in stale]
