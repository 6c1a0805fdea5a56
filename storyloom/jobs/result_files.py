"""A job's result files on the chat side's disk.

A worker writes a job's files to `<output_dir>/job-<id>/`. In the embedded mode (or with a
shared volume) the chat side finds them there; in the distributed mode the worker also saves
them in the database (`save_files`), and the chat side writes them into its own output
folder before posting, then lets the database forget them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from storyloom.generation.export import write_bytes
from storyloom.storage.job_watch import (
    drop_artifacts,
    drop_posted_artifacts,
    load_artifacts,
    save_artifacts,
)
from storyloom.storage.unit_of_work import session_of
from storyloom.story.model import RenderJob
from storyloom.story.ports import Database, UnitOfWork


def job_folder(out_dir: Path, job_id: int) -> Path:
    """Where a job's files are written."""
    return out_dir / f"job-{job_id}"


async def save_files(uow: UnitOfWork, job_id: int, files: Sequence[Path]) -> None:
    """Keep a done job's files in the database (`LocalWorker.save_files`)."""
    await save_artifacts(session_of(uow), job_id, files)


async def local_files(db: Database, job: RenderJob, out_dir: Path) -> tuple[tuple[Path, ...], bool]:
    """The job's result files on this machine, in order (main result first): found in its
    folder, or written there from the database (names with neither are left out); and
    whether any came from the database (so its copy is to be forgotten once posted)."""
    folder = job_folder(out_dir, job.id)
    missing = [name for name in job.result_files if not (folder / name).is_file()]
    fetched = False
    if missing:
        async with db.reading() as uow:
            stored = await load_artifacts(session_of(uow), job.id)
        for name in missing:
            if name in stored:
                await asyncio.to_thread(write_bytes, folder / name, stored[name])
                fetched = True
    files = tuple(folder / name for name in job.result_files if (folder / name).is_file())
    return files, fetched


async def forget_files(db: Database, job_id: int) -> None:
    """Drop the database's copy of a posted job's files."""
    async with db.writing() as uow:
        await drop_artifacts(session_of(uow), job_id)


async def forget_posted_files(db: Database) -> int:
    """Drop the database's copy of every posted job's files: the sweep behind
    `forget_files`, for a bot stopped between posting and forgetting."""
    async with db.writing() as uow:
        return await drop_posted_artifacts(session_of(uow))
