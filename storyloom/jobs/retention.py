"""Retention of job results on disk: nothing kept forever.

A result's local files have served once they are posted: `result_posted` (called by the
reporting path right after a successful post) deletes the job's folder at once when the
operator keeps nothing (`keep_outputs_hours = 0`), or marks it with the time of posting.
`sweep_outputs` (run periodically) deletes marked folders older than the keep-for time,
then, while the folder is over its byte budget, the oldest posted ones, then stale
unposted ones (a worker's copy already handed over through the database).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from storyloom.jobs.result_files import job_folder

log = logging.getLogger(__name__)

POSTED_MARK = ".posted"
GiB = 1024**3


def result_posted(
    out_dir: Path, job_id: int, keep_for_s: float | None, shown: bool = False
) -> None:
    """The job's result is in the chat: delete its folder now (keep-for 0) or mark it. A
    result a live share link shows (`shown`) is only marked: the sweep spares it."""
    folder = job_folder(out_dir, job_id)
    if not folder.is_dir() or keep_for_s is None:
        return
    if keep_for_s <= 0 and not shown:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        (folder / POSTED_MARK).touch()


@dataclass(frozen=True)
class _Folder:
    path: Path
    posted_at: float | None
    changed_at: float
    size: int


def _folders(out_dir: Path) -> list[_Folder]:
    found = []
    for path in out_dir.glob("job-*"):
        if not path.is_dir():
            continue
        try:
            mark = path / POSTED_MARK
            posted_at = mark.stat().st_mtime if mark.exists() else None
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            found.append(_Folder(path, posted_at, path.stat().st_mtime, size))
        except FileNotFoundError:
            continue  # deleted meanwhile
    return found


def sweep_outputs(
    out_dir: Path,
    keep_for_s: float,
    budget_bytes: int,
    now: float | None = None,
    keep: frozenset[int] = frozenset(),
) -> int:
    """Delete what retention allows, never the folders of the jobs in `keep` (what a live
    share link shows); return the number of job folders deleted."""
    now = time.time() if now is None else now
    spared = {job_folder(out_dir, job_id) for job_id in keep}
    folders = [f for f in _folders(out_dir) if f.path not in spared]
    expired = [f for f in folders if f.posted_at is not None and now - f.posted_at >= keep_for_s]
    kept = [f for f in folders if f not in expired]
    used = sum(f.size for f in kept)
    # past the budget: posted results first (oldest post first), then stale unposted ones
    posted = sorted((f for f in kept if f.posted_at is not None), key=lambda f: f.posted_at or 0)
    stale = sorted(
        (f for f in kept if f.posted_at is None and now - f.changed_at >= keep_for_s),
        key=lambda f: f.changed_at,
    )
    over = []
    for folder in posted + stale:
        if used <= budget_bytes:
            break
        over.append(folder)
        used -= folder.size
    for folder in expired + over:
        shutil.rmtree(folder.path, ignore_errors=True)
    if used > budget_bytes:
        log.warning("results in %s use %d bytes, over the %d budget", out_dir, used, budget_bytes)
    return len(expired) + len(over)


async def sweep_forever(
    out_dir: Path,
    keep_for_s: float,
    budget_bytes: int,
    every_s: float = 600.0,
    shown: Callable[[], Awaitable[frozenset[int]]] | None = None,
) -> None:
    """Sweep every few minutes until cancelled (a chat side's and a worker's outputs),
    sparing the jobs `shown` names (the chat side's share links)."""
    while True:
        try:
            keep = frozenset() if shown is None else await shown()
            deleted = await asyncio.to_thread(
                sweep_outputs, out_dir, keep_for_s, budget_bytes, None, keep
            )
            if deleted:
                log.info("deleted %d old job result folders in %s", deleted, out_dir)
        except Exception:
            log.exception("cleaning old results failed; trying again later")
        await asyncio.sleep(every_s)
