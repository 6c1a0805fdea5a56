"""Reading job rows in tests: a job as its row says now, or once it reaches a status."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from storyloom.story.model import JobStatus, RenderJob
from storyloom.story.ports import Database


async def job_row(db: Database, job_id: int) -> RenderJob:
    """The job as its row says now."""
    async with db.reading() as uow:
        job = await uow.jobs.find(job_id)
    assert job is not None, f"no job {job_id}"
    return job


async def until_status(
    db: Database,
    job_id: int,
    *wanted: JobStatus,
    timeout: float = 60,
    logs: Callable[[], str] = lambda: "",
) -> RenderJob:
    """Wait until the job's row is in one of these states; fail with `logs()` (say, the
    workers' logs) if it does not get there within `timeout` seconds."""

    async def reached() -> RenderJob:
        while (job := await job_row(db, job_id)).status not in wanted:
            await asyncio.sleep(0.05)
        return job

    try:
        return await asyncio.wait_for(reached(), timeout)
    except TimeoutError:
        stuck = (await job_row(db, job_id)).status
        raise AssertionError(f"job {job_id} stayed {stuck}, never {wanted}:\n{logs()}") from None


async def owed_state(db: Database, job_id: int) -> str | None:
    """The state of the job's owed outcome in the outbox (None: none is owed)."""
    from sqlalchemy import select

    from storyloom.storage.tables import OwedMessageRow
    from storyloom.storage.unit_of_work import session_of

    async with db.reading() as uow:
        query = select(OwedMessageRow.state).where(OwedMessageRow.job_id == job_id)
        return (await session_of(uow).execute(query)).scalar_one_or_none()
