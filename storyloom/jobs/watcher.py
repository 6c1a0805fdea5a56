"""The chat side's view of its jobs, read from the database: the one source of job events.

Workers (in this process or on other machines) write each job's row: running, progress,
done with its files, failed, cancelled. `JobWatcher` reads those rows twice a second, or at
once when poked, and tells the notifier what changed:

- QUEUED with the job's place in the fair line, whenever that place changes;
- RUNNING when the job starts, and again with each new progress report;
- one final event per job, DONE (with the result's files), FAILED or CANCELLED, also for a
  job cancelled while it waited, or one that ended while the bot was down.

The final event is owed exactly once: the transaction that marks the row `posted` also
writes it into the outbox (`storage.owed`), which `jobs.delivery` sends until delivered.
Passing events go to the delivery too, which sends them lane by lane: the watcher never
waits on a chat platform, so a rate-limited workspace holds up no other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from storyloom.jobs.delivery import Delivery
from storyloom.jobs.events import JobEvent, Notify
from storyloom.jobs.progress import JobProgress
from storyloom.jobs.waits import wait_event
from storyloom.storage.engine import SqlDatabase
from storyloom.storage.job_watch import WatchedJob, unknown_statuses, watched_jobs
from storyloom.storage.outage import is_outage
from storyloom.storage.owed import owe
from storyloom.storage.unit_of_work import session_of
from storyloom.story.model import JobStatus
from storyloom.story.service import utc_now

log = logging.getLogger(__name__)

# The longest pause between polls while they fail (a database outage).
OUTAGE_POLL_S = 5.0

Places = Callable[[], Awaitable[dict[int, int]]]


@dataclass
class JobWatcher:
    """Polls the job rows of this chat side and turns their changes into `JobEvent`s."""

    db: SqlDatabase
    delivery: Delivery
    places: Places  # every waiting job's place in the fair line
    owns: Callable[[str], bool] = lambda workspace_id: True  # which stories are ours
    every_s: float = 0.5  # one indexed query: cheap, and the bot hears of a result soon
    observe: Notify | None = None  # sees every event as it is handed over (the metrics)
    _seen: dict[int, tuple[JobStatus, int | None, str | None]] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def poke(self) -> None:
        """Poll now rather than at the next tick (a worker in this process changed a row)."""
        self._wake.set()

    async def run(self) -> None:
        """Scan until cancelled; a failed scan is logged, not fatal. While the database is
        out, polls back off (up to `OUTAGE_POLL_S`) and the outage is logged once."""
        failures = 0
        while True:
            self._wake.clear()
            try:
                await self.scan()
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
        """Scan once and wait until what it handed over is sent (or waits for a rate limit):
        for draining and for tests; the loop itself never waits on a platform."""
        await self.scan()
        await self.delivery.flush()

    async def scan(self) -> None:
        """Read the rows once and hand every change since the last scan to the delivery."""
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
                await self._report(item)
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
            await self._tell(item, JobEvent(job, JobStatus.QUEUED, place=place))
        elif before is None or before[0] != JobStatus.RUNNING or item.progress is None:
            await self._tell(item, JobEvent(job, JobStatus.RUNNING))
        else:
            progress = replace(JobProgress.from_json(item.progress), preview=item.preview)
            await self._tell(item, JobEvent(job, JobStatus.RUNNING, progress=progress))

    async def _tell(self, item: WatchedJob, event: JobEvent) -> None:
        """A passing event: sent in its lane; a newer one replaces it if still unsent."""
        self.delivery.show(item.lane, event)
        await self._observe(event)

    async def _observe(self, event: JobEvent) -> None:
        if self.observe is not None:
            try:
                await self.observe(event)
            except Exception:
                log.exception("job %s: observing its %s event failed", event.job.id, event.status)

    async def _report(self, item: WatchedJob) -> None:
        """The job's outcome, owed exactly once (see the module docstring)."""
        job = item.job
        async with self.db.writing() as uow:
            if not await uow.jobs.mark_posted(job.id):
                return  # another watcher (a second bot process) has it
            await owe(session_of(uow), job.id, item.workspace_id, item.lane, utc_now())
        self.delivery.owed(job.id)
        self._seen.pop(job.id, None)
        await self._observe(JobEvent(replace(job, posted=True), job.status, (), job.error))
