"""The worker's side of a job, as rows: what a `storyloom worker` (or the in-process worker)
writes, so the bot's real job watcher has something to report. No rendering."""

from __future__ import annotations

from pathlib import Path

from storyloom.jobs.admission import store_progress
from storyloom.jobs.progress import JobProgress
from storyloom.jobs.result_files import job_folder, save_files
from storyloom.storage import SqlDatabase
from storyloom.story.model import JobStatus
from storyloom.story.service import utc_now


async def start(db: SqlDatabase, job_id: int) -> None:
    """The worker claims the job (one attempt): it is running."""
    async with db.writing() as uow:
        seen = await uow.jobs.find(job_id)
        assert seen is not None and await uow.jobs.claim(job_id, seen, utc_now())


async def report(db: SqlDatabase, job_id: int, progress: JobProgress) -> None:
    """The worker's throttled progress report, on the row."""
    async with db.writing() as uow:
        await store_progress(uow, job_id, progress)


async def finish(db: SqlDatabase, out_dir: Path, job_id: int, files: dict[str, bytes]) -> None:
    """The job is done: its files in its folder, their names on the row (main first)."""
    folder = job_folder(out_dir, job_id)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    async with db.writing() as uow:
        await uow.jobs.set_status(job_id, JobStatus.DONE, utc_now(), files=list(files))


async def fail(db: SqlDatabase, job_id: int, error: str) -> None:
    """The job failed with `error`."""
    async with db.writing() as uow:
        await uow.jobs.set_status(job_id, JobStatus.FAILED, utc_now(), error=error)


async def finish_elsewhere(
    db: SqlDatabase, job_id: int, files: dict[str, bytes], tmp: Path
) -> None:
    """Done on another machine (`storyloom worker`): the files reach the bot through the
    database, not its disk."""
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        (tmp / name).write_bytes(data)
        paths.append(tmp / name)
    async with db.writing() as uow:
        await save_files(uow, job_id, paths)
        await uow.jobs.set_status(job_id, JobStatus.DONE, utc_now(), files=list(files))
