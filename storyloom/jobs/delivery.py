"""The outbox's delivery: owed outcomes (durable rows) and passing changes (in memory) go
out in lanes, one per workspace channel, each lane in order and on its own.

- A lane that the platform rate-limits (`Retry`) waits as asked; no other lane waits with it.
- An outcome that fails is retried with backoff (1 s, 2 s, … up to 5 minutes) for as long as
  it takes; after `FAILING_AFTER` failures it is logged as failing and counted in /metrics.
- An outcome the platform will never take (`Undeliverable`) is logged once and set aside.
- A job whose outcome is owed gets no more passing changes: the outcome is the last word on
  its status message (a lane sends in order, so one already sent came before it).

Exactly once: the outcome row is written in the transaction that marks the job reported,
each step of its delivery is recorded when made, and one begun but not recorded is checked
on the platform before it is made again (see `jobs.courier`). A crash at any instant
therefore ends in one delivery after the restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from storyloom.jobs.courier import Courier, Owed, Retry, Undeliverable
from storyloom.jobs.events import JobEvent
from storyloom.jobs.result_files import forget_files, local_files
from storyloom.jobs.retention import result_posted
from storyloom.jobs.waits import wait_event
from storyloom.storage import owed as sql
from storyloom.storage.engine import SqlDatabase
from storyloom.storage.outage import is_outage
from storyloom.storage.unit_of_work import session_of
from storyloom.story.service import utc_now

log = logging.getLogger(__name__)

BACKOFF_S = (1.0, 300.0)  # first retry, longest wait between retries
FAILING_AFTER = sql.FAILING_AFTER


def backoff_s(attempts: int) -> float:
    """The wait before the next try after `attempts` failures."""
    first, most = BACKOFF_S
    return min(most, first * 2 ** max(0, attempts - 1))


@dataclass
class _Lane:
    """One channel's queue: owed outcomes first, then the latest passing change per job."""

    name: str
    rows: deque[sql.OwedRow] = field(default_factory=deque)
    passing: OrderedDict[int, JobEvent] = field(default_factory=OrderedDict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    busy: bool = False
    blocked_until: float = 0.0  # monotonic: the platform asked this lane to wait
    task: asyncio.Task[None] | None = None

    def idle(self, now: float) -> bool:
        """Nothing this lane can send now."""
        return not self.busy and (now < self.blocked_until or not (self.rows or self.passing))


@dataclass
class Delivery:
    """Sends what the job watcher hands it, through the chat adapter's courier."""

    db: SqlDatabase
    courier: Courier
    out_dir: Path  # where result files are, or are written when they come from the database
    owns: Callable[[str], bool] = lambda workspace_id: True
    every_s: float = 0.5
    # seconds a posted result's local files are kept (0: deleted once posted; None: kept)
    keep_outputs_s: float | None = None
    # the jobs a live share link shows: their files stay (None: no reader here)
    shown: Callable[[], Awaitable[frozenset[int]]] | None = None
    _lanes: dict[str, _Lane] = field(default_factory=dict)
    _queued: set[int] = field(default_factory=set)  # owed row ids in a lane now
    _ended: set[int] = field(default_factory=set)  # jobs whose outcome is owed
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: bool = False

    # -- what the watcher hands over --------------------------------------------------
    def show(self, lane: str, event: JobEvent) -> None:
        """Queue a passing change (a newer one for the same job replaces it)."""
        if event.job.id in self._ended:
            return
        queue = self._lane(lane)
        queue.passing.pop(event.job.id, None)
        queue.passing[event.job.id] = event
        queue.wake.set()

    def owed(self, job_id: int) -> None:
        """A job's outcome was just written as owed: no more passing changes; go and send."""
        self._ended.add(job_id)
        for lane in self._lanes.values():
            lane.passing.pop(job_id, None)
        self._wake.set()

    # -- the loops --------------------------------------------------------------------
    async def run(self) -> None:
        """Read the due rows every `every_s` (or when poked) until cancelled. A database
        outage is logged once, when it begins, not with a traceback at every read."""
        failures = 0
        while True:
            self._wake.clear()
            try:
                await self.collect()
            except Exception as error:
                failures += 1
                if not is_outage(error):
                    log.exception("reading owed messages failed; trying again")
                elif failures == 1:
                    log.warning("reading owed messages: the database is unavailable (%s)", error)
            else:
                if failures:
                    log.info("reading owed messages again after %d failed reads", failures)
                failures = 0
            await wait_event(self._wake, self.every_s)

    async def collect(self) -> None:
        """Hand every due owed row of ours to its lane."""
        async with self.db.reading() as uow:
            rows = await sql.due(session_of(uow), utc_now())
        for row in rows:
            if row.id in self._queued or not self.owns(row.workspace_id):
                continue
            self._queued.add(row.id)
            self._ended.add(row.job_id)
            lane = self._lane(row.lane)
            lane.passing.pop(row.job_id, None)
            lane.rows.append(row)
            lane.wake.set()

    async def flush(self, timeout_s: float = 60.0) -> None:
        """Collect, then wait until no lane has anything it can send now (a rate-limited
        lane counts as done): for draining and for tests."""
        await self.collect()
        deadline = time.monotonic() + timeout_s
        while not all(lane.idle(time.monotonic()) for lane in self._lanes.values()):
            if time.monotonic() > deadline:
                raise TimeoutError("owed messages still being sent")
            await asyncio.sleep(0.01)

    async def close(self, grace_s: float = 10.0) -> None:
        """Stop every lane: what a lane is sending now may finish within `grace_s` (so a
        clean stop leaves no step half made); what they hold stays owed in the database."""
        self._closing = True
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for lane in self._lanes.values():
            lane.wake.set()
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        for task in tasks:
            task.cancel()
        if tasks:  # not under suppress(CancelledError): a cancel of this stop must go on
            await asyncio.wait(tasks)
        self._lanes.clear()
        self._queued.clear()

    def _lane(self, name: str) -> _Lane:
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = _Lane(name)
        if (lane.task is None or lane.task.done()) and not self._closing:
            lane.task = asyncio.create_task(self._serve(lane), name=f"storyloom-lane-{name}")
        return lane

    async def _serve(self, lane: _Lane) -> None:
        while not self._closing:
            wait = lane.blocked_until - time.monotonic()
            if wait > 0:
                lane.wake.clear()
                await wait_event(lane.wake, wait)  # woken early: closing
                continue
            if not (lane.rows or lane.passing):
                lane.wake.clear()
                await lane.wake.wait()
                continue
            lane.busy = True
            try:
                if lane.rows:
                    await self._settle(lane)
                else:
                    await self._show(lane)
            except Retry as retry:
                lane.blocked_until = time.monotonic() + retry.after_s
                log.info("lane %s: %s", lane.name, retry)
            finally:
                lane.busy = False

    async def _show(self, lane: _Lane) -> None:
        job_id, event = lane.passing.popitem(last=False)
        try:
            await self.courier.show(event)
        except Retry:
            lane.passing.setdefault(job_id, event)  # unless a newer change came meanwhile
            lane.passing.move_to_end(job_id, last=False)
            raise
        except Exception:
            # a passing change: the next one (or the outcome) shows the job anew
            log.exception("job %s: its %s change was not shown", job_id, event.status)

    async def _settle(self, lane: _Lane) -> None:
        row = lane.rows[0]
        try:
            await self._deliver(row)
        except Retry as retry:
            async with self.db.writing() as uow:
                at = utc_now() + timedelta(seconds=retry.after_s)
                await sql.retry_at(session_of(uow), row.id, at, str(retry), failed=False)
            raise  # the row stays at the head of its lane: the lane keeps its order
        except Undeliverable as error:
            log.warning("job %s: its outcome cannot be delivered: %s", row.job_id, error)
            async with self.db.writing() as uow:
                await sql.impossible(session_of(uow), row.id, str(error), utc_now())
        except Exception as error:
            async with self.db.writing() as uow:
                attempts = row.attempts + 1
                at = utc_now() + timedelta(seconds=backoff_s(attempts))
                attempts = await sql.retry_at(
                    session_of(uow), row.id, at, f"{type(error).__name__}: {error}", failed=True
                )
            level = logging.ERROR if attempts >= FAILING_AFTER else logging.WARNING
            log.log(
                level,
                "job %s: delivering its outcome failed (%d times); retrying in %.0f s",
                row.job_id,
                attempts,
                backoff_s(attempts),
                exc_info=error,
            )
        lane.rows.popleft()
        self._queued.discard(row.id)

    async def _deliver(self, seen: sql.OwedRow) -> None:
        async with self.db.reading() as uow:
            row = await sql.get(session_of(uow), seen.id)
            job = await uow.jobs.find(seen.job_id)
        if row is None or row.state != sql.PENDING:
            return  # delivered meanwhile (or its job deleted)
        if job is None:
            raise Undeliverable("its job was deleted")
        files: tuple[Path, ...] = ()
        fetched = False
        if job.result_files:
            files, fetched = await local_files(self.db, job, self.out_dir)

        async def begin(step: str) -> None:
            async with self.db.writing() as uow:
                await sql.begin_step(session_of(uow), row.id, step)

        async def finish(step: str) -> None:
            async with self.db.writing() as uow:
                await sql.finish_step(session_of(uow), row.id, step)

        owed = Owed(job, files, row.done, row.started, begin, finish)
        await self.courier.settle(owed)
        async with self.db.writing() as uow:
            complete = await sql.delivered(session_of(uow), row, owed.done, utc_now())
        if not complete:
            return
        if fetched:  # the worker was elsewhere: its copy in the database served
            await forget_files(self.db, job.id)
        # retention: posted, so the local copy may go (now, or after keep_outputs_s)
        shown = self.shown is not None and job.id in await self.shown()
        await asyncio.to_thread(result_posted, self.out_dir, job.id, self.keep_outputs_s, shown)
