"""A graceful stop for a process that renders: finish the job in hand, or hand it back.

On the first SIGTERM (or SIGINT) the worker takes no new job and lets the one in hand go
on for `stop_grace_s`. If it is not done by then (or a second signal comes), the render
stops at its next denoising step and the job goes back to `queued` in the database, its
attempt not counted, and its id is sent to the queue again, so another worker (or this
one, restarted) takes it at once. Either way no job is left `running` on a stopped
process. The database write comes first: should the send fail, the row is still queued
and the bot's `requeue_stale` sends it again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

from storyloom.story.model import RenderJob
from storyloom.story.ports import Database, JobQueue
from storyloom.story.service import utc_now

if TYPE_CHECKING:
    from storyloom.ops.server import Ops

log = logging.getLogger(__name__)


class GracefulStop:
    """The stop signal of one process: `stop` (take no new job), then `requested()` (give
    up the job in hand). The latter is read by the render thread, so it is thread-safe."""

    def __init__(self, stop: asyncio.Event, grace_s: float, ops: Ops | None = None) -> None:
        self.stop = stop
        self.grace_s = grace_s
        self.ops = ops
        self._give_up = threading.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._db: Database | None = None
        self._queue: JobQueue | None = None

    def bind(self, db: Database, queue: JobQueue) -> None:
        """Where a handed-back job is written and sent (known only once both are open)."""
        self._db, self._queue = db, queue

    def request(self) -> None:
        """The signal handler: the first call starts the grace, a second ends it."""
        if self.ops is not None:
            self.ops.stopping = True
        if self.stop.is_set():
            self.give_up()
            return
        log.info("stopping: no new jobs; the job in hand has %.0f s to finish", self.grace_s)
        self.stop.set()
        self._timer = asyncio.get_running_loop().call_later(self.grace_s, self.give_up)

    def give_up(self) -> None:
        """Stop the job in hand at its next step (it will be handed back)."""
        if not self._give_up.is_set():
            log.info("stopping: the job in hand, if any, is handed back")
            self._give_up.set()

    def requested(self) -> bool:
        """Whether the job in hand should stop now (called from the render thread)."""
        return self._give_up.is_set()

    def close(self) -> None:
        """Forget a pending grace timer (the process is done)."""
        if self._timer is not None:
            self._timer.cancel()

    async def hand_back(self, job: RenderJob) -> None:
        """Put `job`, interrupted here, back in the line and send its id again."""
        if self._db is None or self._queue is None:
            raise RuntimeError("GracefulStop.bind() was not called before a job ran")
        if not await return_to_queue(self._db, job):
            log.info("job %s was not handed back: it changed meanwhile (cancelled?)", job.id)
            return
        if self.ops is not None:
            self.ops.metrics.handed_back.inc()
        try:
            await self._queue.submit(job.id)
        except Exception as error:  # the row is queued: the bot's requeue_stale sends it
            log.warning("job %s handed back but not re-sent: %s", job.id, type(error).__name__)
            return
        log.info("job %s handed back: queued again for another worker", job.id)


async def return_to_queue(db: Database, job: RenderJob) -> bool:
    """`running` → `queued` for the attempt this process claimed (`job` is the row as read
    before the claim), and that attempt not counted: a stop is not a lost worker. False
    if the row has moved on (cancelled, or taken over by another worker)."""
    async with db.writing() as uow:
        return await uow.jobs.release(job, utc_now())
