"""The chat side's view of its jobs, read from the database: the one source of job events.

Workers (in this process or on other machines) write each job's row: running, progress,
done with its files, failed, cancelled. `JobWatcher` reads those rows twice a second, or at
once when poked, and tells the notifier what changed:

- QUEUED with the job's place in the fair line, whenever that place changes;
- RUNNING when the job starts, and again with each new progress report;
- one final event per job, DONE (with the result's files), FAILED or CANCELLED, also for a
  job cancelled while it waited, or one that ended while the bot was down.

The final event is reported exactly once: the watcher marks the row `posted` before it calls
the notifier, and clears the mark again if the notifier fails, so the next poll retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from storyloom.jobs.events import JobEvent, Notify
from storyloom.jobs.progress import JobProgress
from storyloom.jobs.result_files import forget_files, local_files
from storyloom.jobs.waits import wait_event
from storyloom.storage.engine import SqlDatabase
from storyloom.storage.job_watch import WatchedJob, unknown_statuses, watched_jobs
from storyloom.storage.outage import is_outage
from storyloom.storage.unit_of_work import session_of
from storyloom.story.model import JobStatus, RenderJob
from storyloom.story.service import utc_now

log = logging.getLogger(__name__)

# A notifier that fails on the same outcome this many times gives up on it: a result that
# cannot be posted (a deleted channel, say) must not be retried forever.
MAX_REPORT_TRIES = 3

# The longest pause between polls while they fail (a database outage).
OUTAGE_POLL_S = 5.0

Places = Callable[[], Awaitable[dict[int, int]]]


@dataclass
class JobWatcher:
    """Polls the job rows of this chat side and turns their changes into `JobEvent`s."""

    db: SqlDatabase
    notify: Notify
    out_dir: Path  # where result files are found, or written when they come from the database
    places: Places  # every waiting job's place in the fair line
    owns: Callable[[str], bool] = lambda workspace_id: True  # which stories are ours
    every_s: float = 0.5  # one indexed query: cheap, and the bot hears of a result soon
    _seen: dict[int, tuple[JobStatus, int | None, str | None]] = field(default_factory=dict)
    _tries: dict[int, int] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def poke(self) -> None:
        """Poll now rather than at the next tick (a worker in this process changed a row)."""
        self._wake.set()

    async def run(self) -> None:
        """Poll until cancelled; a failed poll is logged, not fatal. While the database is
        out, polls back off (up to `OUTAGE_POLL_S`) and the outage is logged once."""
        failures = 0
        while True:
            self._wake.clear()
            try:
                await self.poll()
            except Exception as error:
                failures += 1
                if not is_outage(error):
                    log.exception("watching jobs failed; trying again")
                elif failures == 1:
                    log.warning("watching jobs: the database is unavailable (%s)", error)
            else:
                if failures:
                    log.info("watching jobs again after %d failed polls", failures)
                failures = 0
            pause = min(OUTAGE_POLL_S, self.every_s * 2**failures) if failures else self.every_s
            await wait_event(self._wake, pause)

    async def poll(self) -> None:
        """Read the rows once and report every change since the last poll."""
        async with self.db.reading() as uow:
            found = await watched_jobs(session_of(uow))
            unknown = await unknown_statuses(session_of(uow))
        if unknown:
            await self._fail_unknown(unknown)
        watched = [w for w in found if self.owns(w.workspace_id)]
        waiting = any(w.job.status == JobStatus.QUEUED for w in watched)
        places = await self.places() if waiting else {}
        for item in watched:
            if item.job.status.active:
                await self._follow(item, places.get(item.job.id))
            else:
                await self._report(item.job)
        alive = {item.job.id for item in watched}
        for job_id in set(self._seen) - alive:
            del self._seen[job_id]

    async def _fail_unknown(self, rows: Sequence[tuple[int, str]]) -> None:
        """Fail the jobs whose status this version cannot read, each with its reason: the
        next poll reports them like any failed job, and nothing else waits on them."""
        async with self.db.writing() as uow:
            for job_id, status in rows:
                reason = f"its status {status!r} is unknown to this version of storyloom"
                log.error("job %s failed: %s", job_id, reason)
                await uow.jobs.set_status(job_id, JobStatus.FAILED, utc_now(), error=reason)

    async def _follow(self, item: WatchedJob, place: int | None) -> None:
        job = item.job
        now = (job.status, place, item.progress)
        before = self._seen.get(job.id)
        self._seen[job.id] = now
        if before == now:
            return
        if job.status == JobStatus.QUEUED:
            await self._tell(JobEvent(job, JobStatus.QUEUED, place=place))
        elif before is None or before[0] != JobStatus.RUNNING or item.progress is None:
            await self._tell(JobEvent(job, JobStatus.RUNNING))
        else:
            await self._tell(
                JobEvent(job, JobStatus.RUNNING, progress=JobProgress.from_json(item.progress))
            )

    async def _tell(self, event: JobEvent) -> None:
        """A passing event: a failure to show it is logged; the next change shows anew."""
        try:
            await self.notify(event)
        except Exception:
            log.exception("job %s: the %s event was not shown", event.job.id, event.status)

    async def _report(self, job: RenderJob) -> None:
        """The job's outcome, exactly once (see the module docstring)."""
        async with self.db.writing() as uow:
            if not await uow.jobs.mark_posted(job.id):
                return  # another watcher (a second bot process) has it
        job = replace(job, posted=True)
        try:
            files: tuple[Path, ...] = ()
            fetched = False
            if job.status == JobStatus.DONE:
                files, fetched = await local_files(self.db, job, self.out_dir)
            await self.notify(JobEvent(job, job.status, files, job.error))
        except asyncio.CancelledError:
            # the process is stopping in the middle of the report: give it back, so the
            # next start reports it (perhaps twice, never not at all)
            async with self.db.writing() as uow:
                await uow.jobs.unmark_posted(job.id)
            raise
        except Exception:
            tries = self._tries.get(job.id, 0) + 1
            self._tries[job.id] = tries
            if tries < MAX_REPORT_TRIES:
                log.exception("job %s: reporting its outcome failed; it will be retried", job.id)
                async with self.db.writing() as uow:
                    await uow.jobs.unmark_posted(job.id)
            else:
                log.exception("job %s: reporting its outcome failed %d times", job.id, tries)
            return
        self._tries.pop(job.id, None)
        self._seen.pop(job.id, None)
        if fetched:  # the worker was elsewhere: its copy in the database has served
            await forget_files(self.db, job.id)
