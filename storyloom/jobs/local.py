"""The job runner: one job at a time, rendering off the event loop.

In the embedded default taskiq's in-memory broker feeds it (jobs/runtime); in the distributed
mode `storyloom worker` feeds it the jobs Redis delivers. The job row is the record: the worker
reads the job and its story back from the database, skips a job cancelled while it waited,
marks it running, renders in a thread (so the chat loop never stalls), and marks it done
(with its result's file names) or failed. The renderer is loaded on the first job, once per
process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from storyloom.generation.renderer import Progress, RenderCancelled, StoryRenderer
from storyloom.jobs.artifacts import JobInput, render_job
from storyloom.jobs.events import JobEvent, Notify
from storyloom.jobs.progress import JobProgress, ProgressMeter
from storyloom.jobs.result_files import job_folder
from storyloom.ops.trouble import failed_sentence, reference
from storyloom.story.model import Beat, Character, JobKind, JobStatus, LockState, RenderJob, Story
from storyloom.story.ports import Database, UnitOfWork
from storyloom.story.service import utc_now

__all__ = ["JobEvent", "LocalWorker", "Notify"]

log = logging.getLogger(__name__)

# A worker that loses the race for the head of the line tries the next waiting job: its
# message stands for one waiting job, which must not be left without one (a few rounds
# suffice: each lost race means another worker started a job).
CLAIM_ROUNDS = 5

# Saves a done job's files where a chat side on another machine can fetch them, inside the
# transaction that marks it done (jobs/artifact_store.save_files).
SaveFiles = Callable[[UnitOfWork, int, Sequence[Path]], Awaitable[None]]


@dataclass
class LocalWorker:
    """Runs the jobs its broker delivers (`process`), one at a time, in this process."""

    db: Database
    load_renderer: Callable[[], StoryRenderer]
    out_dir: Path
    notify: Notify
    clip_budget_bytes: int = 10 * 1024 * 1024
    cancel_poll_seconds: float = 1.0  # how often a running job re-reads its row for a cancel
    # Distributed mode: a job found `running` whose heartbeat is older than this is taken
    # over (its worker died and the broker redelivered it). None: never (one process).
    take_over_after: timedelta | None = None
    heartbeat_seconds: float = 10.0  # how often a running job touches its row
    max_attempts: int = 3  # a job that killed this many workers is failed, not retried
    # Fair turns: a message is a token for "a job waits"; the worker starts the job at the
    # head of the line (jobs/admission.head_of_line), not necessarily the one named. Each
    # job sends one message, so every waiting job still gets one. None: the job named.
    pick_next: Callable[[UnitOfWork, datetime], Awaitable[int | None]] | None = None
    progress_every_s: float = 3.0  # at most one progress report (event, row write) this often
    # Writes a report to the job row (jobs/admission.store_progress), so a chat side in
    # another process can show it. None: reports go to `notify` only.
    store_progress: Callable[[UnitOfWork, int, JobProgress], Awaitable[None]] | None = None
    save_files: SaveFiles | None = None  # None: the chat side reads files from out_dir
    # Graceful stop (ops/shutdown.py): once `stopping()` is true, a running render stops at
    # its next step and `hand_back(job)` returns the job to the line (it is not cancelled).
    stopping: Callable[[], bool] = lambda: False
    hand_back: Callable[[RenderJob], Awaitable[None]] | None = None
    _finished: set[int] = field(default_factory=set)  # so a late progress report is dropped
    # reports are written and told in the order the render made them, one at a time
    _reporting: asyncio.Lock = field(default_factory=asyncio.Lock)
    _renderer: StoryRenderer | None = None

    async def process(self, job_id: int) -> None:
        """Run one job: read it, mark it running, render off the loop, record the outcome."""
        # 1. read the job back and claim it (see `_start`)
        started = await self._start(job_id)
        if started is None:
            return
        job, work = started
        await self.notify(JobEvent(job, JobStatus.RUNNING))

        # 2. render in a thread; the loop keeps answering chat commands meanwhile
        beating = asyncio.create_task(self._heartbeat(job.id))
        loop = asyncio.get_running_loop()
        started_at = time.perf_counter()
        try:
            files = await asyncio.to_thread(
                self._render,
                work,
                self._cancel_check(job.id, loop, self.cancel_poll_seconds),
                self._meter(work, loop),
            )
            rendered_ms = (time.perf_counter() - started_at) * 1000
            log.info("job %s rendered in %.1f ms", job.id, rendered_ms)
        except RenderCancelled:
            if self.hand_back is not None and self.stopping():  # ops: a stop, not a cancel
                self._finished.add(job.id)  # a late progress report must not follow it
                await self.hand_back(job)
                return
            await self._finish(job, JobStatus.CANCELLED)
            return
        except Exception:
            # members see a sentence and the reference; the exception stays in the log
            ref = reference()
            log.exception("job %s failed (ref %s)", job.id, ref)
            await self._finish(job, JobStatus.FAILED, error=failed_sentence(ref))
            return
        finally:
            beating.cancel()

        # 3. record the outcome (a sheet makes the character's look ready to lock)
        if job.kind in (JobKind.SHEET, JobKind.REROLL) and job.character_id is not None:
            async with self.db.writing() as uow:
                await uow.characters.update(
                    job.character_id, utc_now(), lock_state=LockState.SHEET_RENDERED
                )
        await self._finish(job, JobStatus.DONE, files=tuple(files))

    async def _start(self, job_id: int) -> tuple[RenderJob, JobInput] | None:
        """Claim the job to run for this delivery and read what it renders; None if there is
        none. One cancelled while queued never starts, one done is not redone (a
        redelivery), one running elsewhere is left to its live worker; with a fair line,
        the job whose turn it is starts instead of the one named."""
        for _ in range(CLAIM_ROUNDS):
            if self.stopping():
                return None  # the job stays queued for whoever serves the line next
            now = utc_now()
            async with self.db.writing() as uow:
                job = await uow.jobs.find(job_id)
                if self.pick_next is not None and not (job and self._taken_over(job, now)):
                    head = await self.pick_next(uow, now)
                    job = None if head is None else await uow.jobs.find(head)
                if job is None or not self._may_start(job, now):
                    return None
                story = await uow.stories.by_id(job.story_id)
                if story is None:
                    return None
                if job.attempts >= self.max_attempts:
                    error = f"stopped after {job.attempts} attempts: each one lost its worker"
                    await uow.jobs.set_status(job.id, JobStatus.FAILED, now, error=error)
                    failed = job
                else:
                    failed = None
                    beats, cast = await self._inputs(uow, job, story)
                    if not await uow.jobs.claim(job.id, job, now):
                        # another worker started it between our read and this write (on
                        # PostgreSQL two can read the same head): try the next one
                        if self.pick_next is None:
                            return None
                        continue
            if failed is not None:
                await self.notify(JobEvent(failed, JobStatus.FAILED, error=error))
                return None
            return job, JobInput(job, story, beats, cast)
        log.warning("job %s: lost the claim %d times; its message is dropped", job_id, CLAIM_ROUNDS)
        return None

    @staticmethod
    async def _inputs(
        uow: UnitOfWork, job: RenderJob, story: Story
    ) -> tuple[Sequence[Beat], Sequence[Character]]:
        if job.beats:  # the beats as they were when it was asked for
            return job.beats, await uow.characters.list(story.id)
        total = await uow.beats.count(story.id)
        first, last = job.first_position or 1, job.last_position or total
        beats = await uow.beats.page(story.id, first - 1, last - first + 1)
        return beats, await uow.characters.list(story.id)

    def _may_start(self, job: RenderJob, now: datetime) -> bool:
        return job.status == JobStatus.QUEUED or self._taken_over(job, now)

    def _taken_over(self, job: RenderJob, now: datetime) -> bool:
        """Whether the job runs on a dead worker: its row has lost its heartbeat."""
        return (
            job.status == JobStatus.RUNNING
            and self.take_over_after is not None
            and job.updated_at < now - self.take_over_after
        )

    async def _heartbeat(self, job_id: int) -> None:
        """Touch the running job's row so a redelivery can tell a live worker from a dead one."""
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                async with self.db.writing() as uow:
                    await uow.jobs.heartbeat(job_id, utc_now())
            except Exception:  # a busy database skips one beat; the next one may land
                log.warning("job %s: heartbeat not recorded", job_id, exc_info=True)

    def _render(
        self,
        work: JobInput,
        should_cancel: Callable[[], bool],
        on_progress: Callable[[Progress], None],
    ) -> list[Path]:
        if self._renderer is None:
            self._renderer = self.load_renderer()
        return render_job(
            self._renderer,
            work,
            job_folder(self.out_dir, work.job.id),
            clip_budget_bytes=self.clip_budget_bytes,
            on_progress=on_progress,
            should_cancel=should_cancel,
        )

    def _meter(self, work: JobInput, loop: asyncio.AbstractEventLoop) -> ProgressMeter:
        """The render thread's progress callback: throttled, handed to the loop unawaited
        (a slow database or chat must not slow the denoising)."""
        sheet = work.job.kind in (JobKind.SHEET, JobKind.REROLL)
        first = work.beats[0].position if work.beats and not sheet else 1

        def emit(progress: JobProgress) -> None:
            asyncio.run_coroutine_threadsafe(self._report(work.job, progress), loop)

        panels = 0 if sheet else len(work.beats)
        return ProgressMeter(panels, emit, first_panel=first, every_s=self.progress_every_s)

    async def _report(self, job: RenderJob, progress: JobProgress) -> None:
        async with self._reporting:
            await self._report_now(job, progress)

    async def _report_now(self, job: RenderJob, progress: JobProgress) -> None:
        if self.store_progress is not None:
            try:
                async with self.db.writing() as uow:
                    await self.store_progress(uow, job.id, progress)
            except Exception:  # a busy database drops one report; the next may land
                log.warning("job %s: progress not recorded", job.id, exc_info=True)
        if job.id not in self._finished:  # never edit a result back into "running"
            await self.notify(JobEvent(job, JobStatus.RUNNING, progress=progress))

    def _cancel_check(
        self, job_id: int, loop: asyncio.AbstractEventLoop, every: float
    ) -> Callable[[], bool]:
        """A check for the render thread: has the job row been cancelled? (At most every
        ``every`` seconds, so a database read is not added to every denoising step.)"""
        last = time.monotonic()

        async def cancelled() -> bool:
            async with self.db.reading() as uow:
                job = await uow.jobs.find(job_id)
            return job is None or job.status == JobStatus.CANCELLED

        def check() -> bool:
            nonlocal last
            if self.hand_back is not None and self.stopping():  # ops: stopping (see above)
                return True
            if time.monotonic() - last < every:
                return False
            last = time.monotonic()
            return asyncio.run_coroutine_threadsafe(cancelled(), loop).result(timeout=30)

        return check

    async def _finish(
        self,
        job: RenderJob,
        status: JobStatus,
        *,
        files: tuple[Path, ...] = (),
        error: str | None = None,
    ) -> None:
        async with self.db.writing() as uow:
            current = await uow.jobs.find(job.id)
            if current is not None and current.status == JobStatus.CANCELLED:
                # cancelled while it rendered: the member's cancel wins over a late result
                status, files, error = JobStatus.CANCELLED, (), None
            else:
                if files and self.save_files is not None:
                    await self.save_files(uow, job.id, files)
                names = [path.name for path in files]
                await uow.jobs.set_status(job.id, status, utc_now(), error=error, files=names)
        self._finished.add(job.id)
        await self.notify(JobEvent(job, status, files, error))
