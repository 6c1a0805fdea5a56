"""Re-sending jobs that never reached a worker, or lost it: read from the rows, since the
broker may have lost its messages. (What ended while a bot was down is reported by its
`jobs.watcher`, which reads the rows too.)"""

from __future__ import annotations

from datetime import timedelta

from storyloom.story.model import JobStatus
from storyloom.story.ports import Database, JobQueue
from storyloom.story.service import utc_now


async def requeue_stale(
    db: Database,
    queue: JobQueue,
    *,
    queued_for: timedelta | None = timedelta(minutes=2),
    heartbeat_lost_for: timedelta = timedelta(minutes=2),
) -> list[int]:
    """Send again the jobs queued longer than `queued_for` (none if it is None) and those
    running without a heartbeat for `heartbeat_lost_for`; return their ids. A duplicate
    message is harmless: the worker that receives it starts the job whose turn it is, or
    nothing when none waits."""
    now = utc_now()
    queued_before = None if queued_for is None else now - queued_for
    async with db.reading() as uow:
        stale = await uow.jobs.stale(queued_before, now - heartbeat_lost_for)
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
