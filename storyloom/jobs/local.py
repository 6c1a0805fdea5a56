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
import itertools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

from storyloom.generation.preview import latent_preview
from storyloom.generation.renderer import Progress, RenderCancelled, StoryRenderer
from storyloom.generation.safety import Detector, ImageGuard, SafetyAction
from storyloom.jobs.artifacts import JobInput, render_job
from storyloom.jobs.events import JobEvent, Notify
from storyloom.jobs.progress import JobProgress, ProgressMeter
from storyloom.jobs.render_thread import start_in_thread
from storyloom.jobs.result_files import job_folder
from storyloom.jobs.safety_audit import record_safety
from storyloom.ops.trouble import failed_sentence, reference
from storyloom.storage.outage import is_outage
from storyloom.story.errors import StoryError
from storyloom.story.model import Beat, Character, JobKind, JobStatus, LockState, RenderJob, Story
from storyloom.story.ports import Database, UnitOfWork
from storyloom.story.render_limits import RenderLimits
from storyloom.story.service import utc_now

__all__ = ["JobEvent", "LocalWorker", "Notify"]

log = logging.getLogger(__name__)

# A delivery tries job after job until one starts or none waits: each round either starts
# a job, fails one that cannot be rendered, or lost a race to a worker that started one.
# The bound only guards against a bug turning that into an endless loop.
MAX_CLAIM_ROUNDS = 1000

# Pauses between tries of a database step during an outage (the last one repeats until
# `outage_patience_s` is spent).
OUTAGE_PAUSES_S = (0.5, 1.0, 2.0, 5.0)
# Pause before another try of a heartbeat that failed.
HEARTBEAT_RETRY_S = 0.5
T = TypeVar("T")

# Why a worker stops a render it is running (besides a failure of the render itself).
STOPPING, TIME_LIMIT, CANCELLED = "the process is stopping", "time limit", "cancelled"
RENDERABLE = frozenset(JobKind) - {JobKind.UNKNOWN}


class _Stopped(Exception):
    """A render the worker stopped (`why`), or gave up waiting for (`abandoned`)."""

    def __init__(self, why: str, *, abandoned: bool) -> None:
        super().__init__(why)
        self.why, self.abandoned = why, abandoned


# A render's files, main result first, and what the image check did to its images.
_Rendered = tuple[list[Path], list[SafetyAction]]

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
    limits: RenderLimits | None = None  # caps on one job, checked again before rendering
    cancel_poll_seconds: float = 1.0  # how often a running job's row is read for a cancel
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
    # at most one preview image (decoded from the latents) this often; None: no previews
    preview_every_s: float | None = 10.0
    # Writes a report to the job row (jobs/admission.store_progress), so a chat side in
    # another process can show it. None: reports go to `notify` only.
    store_progress: Callable[[UnitOfWork, int, JobProgress], Awaitable[None]] | None = None
    save_files: SaveFiles | None = None  # None: the chat side reads files from out_dir
    # Graceful stop (ops/shutdown.py): once `stopping()` is true, a running render stops at
    # its next step and `hand_back(job)` returns the job to the line (it is not cancelled).
    stopping: Callable[[], bool] = lambda: False
    hand_back: Callable[[RenderJob], Awaitable[None]] | None = None
    time_limit_s: float = 1800.0  # a render running longer is stopped and failed
    # a render asked to stop (cancel, limit, stop) that is still running this much later is
    # abandoned: its thread is left behind and the worker takes the next job
    abandon_after_s: float = 60.0
    on_abandoned: Callable[[], None] | None = None  # a process may prefer to restart then
    # how long a job's start or outcome waits out a database outage before it gives up (the
    # row then stays as it was: queued, or running until its heartbeat is found lost)
    outage_patience_s: float = 300.0
    # The image safety check (generation/safety.py), loaded with the renderer; every job's
    # panels and sheets pass it at the job's level. None: no check (unit tests of the line).
    detector: Callable[[], Detector] | None = None
    # where members' reference pictures are kept (Settings.character_dir): a character's
    # picture reaches the renderer from here. None: references are not passed on.
    character_dir: Path | None = None
    _finished: set[int] = field(default_factory=set)  # so a late progress report is dropped
    # reports are written and told in the order the render made them, one at a time
    _reporting: asyncio.Lock = field(default_factory=asyncio.Lock)
    _renderer: StoryRenderer | None = None

    @property
    def loaded_renderer(self) -> StoryRenderer | None:
        """The renderer, once the first job loaded it."""
        return self._renderer

    def preload(self) -> None:
        """Load the renderer now (from a thread, off the event loop), not at the first job."""
        if self._renderer is None:
            self._renderer = self.load_renderer()

    async def process(self, job_id: int) -> None:
        """Run one job: read it, mark it running, render off the loop, record the outcome."""
        # 1. read the job back and claim it (see `_start`)
        started = await self._start(job_id)
        if started is None:
            return
        job, work = started
        await self.notify(JobEvent(job, JobStatus.RUNNING))

        # 2. render on a thread of its own; the loop keeps answering chat commands meanwhile.
        # The heartbeat goes on until the outcome is recorded: a render that ended during a
        # database outage waits to record it, and must not look dead meanwhile (another
        # worker would take the job over and render it again)
        beating = asyncio.create_task(self._heartbeat(job.id))
        try:
            await self._run(job, work)
        finally:
            beating.cancel()
            await asyncio.wait([beating])

    async def _run(self, job: RenderJob, work: JobInput) -> None:
        """Render the claimed job and record its outcome."""
        started_at = time.perf_counter()
        try:
            files, flagged = await self._supervise(job, work)
        except RenderCancelled:
            if self.hand_back is not None and self.stopping():  # ops: a stop, not a cancel
                self._finished.add(job.id)  # a late progress report must not follow it
                await self.hand_back(job)
                return
            await self._finish(job, JobStatus.CANCELLED)
            return
        except _Stopped as stopped:
            await self._stopped(job, stopped)
            return
        except StoryError as refused:  # a limit or a rule: already a sentence for members
            log.info("job %s refused: %s", job.id, refused.message)
            await self._finish(job, JobStatus.FAILED, error=refused.message)
            return
        except Exception:
            # members see a sentence and the reference; the exception stays in the log
            ref = reference()
            log.exception("job %s failed (ref %s)", job.id, ref)
            await self._finish(job, JobStatus.FAILED, error=failed_sentence(ref))
            return
        log.info("job %s rendered in %.1f ms", job.id, (time.perf_counter() - started_at) * 1000)

        # 3. record the outcome (and what the image check did, for the audit trail)
        await self._finish(
            job, JobStatus.DONE, files=tuple(files), flagged=flagged, story=work.story
        )

    async def _supervise(self, job: RenderJob, work: JobInput) -> _Rendered:
        """Render on a daemon thread and watch it from the loop: a cancel on the row, the
        time limit or a stop asks the render to stop at its next step; a render that does
        not stop within `abandon_after_s` is abandoned (`_Stopped`), freeing the worker."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def should_cancel() -> bool:
            return stop.is_set() or (self.hand_back is not None and self.stopping())

        render = start_in_thread(
            partial(self._render, work, should_cancel, self._meter(work, loop)),
            name=f"storyloom-job-{job.id}",
        )
        began = time.monotonic()
        why: str | None = None
        asked_at = 0.0
        while not render.done():
            await asyncio.wait([render], timeout=max(self.cancel_poll_seconds, 0.02))
            if render.done():
                break
            if why is None:
                why = await self._reason_to_stop(job.id, began)
                if why is not None:
                    stop.set()
                    asked_at = time.monotonic()
            elif time.monotonic() - asked_at > self.abandon_after_s:
                render.cancel()  # the thread's outcome, should it ever come, is dropped
                raise _Stopped(why, abandoned=True)
        try:
            return render.result()
        except RenderCancelled:
            if why == TIME_LIMIT:
                raise _Stopped(why, abandoned=False) from None
            raise

    async def _reason_to_stop(self, job_id: int, began: float) -> str | None:
        """Why the running render should stop now, if it should: a stop, its time limit,
        or a cancel on its row (a database that cannot be read cancels nothing)."""
        if self.hand_back is not None and self.stopping():
            return STOPPING
        if time.monotonic() - began > self.time_limit_s:
            return TIME_LIMIT
        try:
            async with self.db.reading() as uow:
                current = await uow.jobs.find(job_id)
        except Exception as error:  # an outage: keep rendering, the row is read again soon
            log.debug("job %s: cancel check skipped (%s)", job_id, error)
            return None
        return CANCELLED if current is None or current.status == JobStatus.CANCELLED else None

    async def _stopped(self, job: RenderJob, stopped: _Stopped) -> None:
        """The outcome of a render stopped by the worker: abandoned, or past its limit."""
        if stopped.abandoned:
            log.error(
                "job %s: its render did not stop within %.0f s of being asked (%s); abandoned",
                job.id, self.abandon_after_s, stopped.why,
            )  # fmt: skip
            self._renderer = None  # the lost thread may still use it: the next job loads anew
            if self.on_abandoned is not None:
                self.on_abandoned()
        if stopped.why == STOPPING and self.hand_back is not None:
            self._finished.add(job.id)
            await self.hand_back(job)
        elif stopped.why == CANCELLED:
            await self._finish(job, JobStatus.CANCELLED)
        else:
            limit = f"it ran past the time limit of {self.time_limit_s:.0f} s for one job"
            await self._finish(job, JobStatus.FAILED, error=f"render stopped: {limit}")

    async def _start(self, job_id: int) -> tuple[RenderJob, JobInput] | None:
        """`_claim`, waiting out a database outage (the delivery is not spent on it)."""
        return await self._through_outage(f"job {job_id}: start", lambda: self._claim(job_id))

    async def _claim(self, job_id: int) -> tuple[RenderJob, JobInput] | None:
        """Claim the job to run for this delivery and read what it renders; None if there is
        none. One cancelled while queued never starts, one done is not redone (a
        redelivery), one running elsewhere is left to its live worker; with a fair line,
        a dead worker's job comes first, then the job whose turn it is.

        A delivery is never spent while a job waits: a job that cannot be rendered (its
        story or character gone, an unknown kind, too many lost workers) is failed with
        its reason and the next one is tried, as is the next after a lost claim race."""
        for _ in range(MAX_CLAIM_ROUNDS):
            if self.stopping():
                return None  # the job stays queued for whoever serves the line next
            now = utc_now()
            refused: tuple[RenderJob, str] | None = None
            async with self.db.writing() as uow:
                job = await self._choose(uow, job_id, now)
                if job is None:
                    return None
                story = await uow.stories.by_id(job.story_id)
                cast = await uow.characters.list(story.id) if story is not None else ()
                reason = self._cannot_render(job, story, cast)
                if reason is not None:
                    await uow.jobs.set_status(job.id, JobStatus.FAILED, now, error=reason)
                    refused = job, reason
                else:
                    assert story is not None  # or _cannot_render would have said so
                    beats = await self._beats(uow, job, story)
                    if not await uow.jobs.claim(job.id, job, now):
                        # another worker started it between our read and this write (on
                        # PostgreSQL two can read the same head): try the next one
                        if self.pick_next is None:
                            return None
                        continue
            if refused is not None:
                failed, reason = refused
                log.warning("job %s failed before it started: %s", failed.id, reason)
                await self.notify(JobEvent(failed, JobStatus.FAILED, error=reason))
                if self.pick_next is None:
                    return None
                continue
            assert story is not None
            return job, JobInput(job, story, beats, cast)
        log.warning("job %s: no job claimed in %d rounds", job_id, MAX_CLAIM_ROUNDS)
        return None

    async def _choose(self, uow: UnitOfWork, job_id: int, now: datetime) -> RenderJob | None:
        """The job this delivery starts: the one it names if that one's worker died, else a
        dead worker's job (it keeps its place at the head), else the head of the fair line;
        without a fair line, the job named. None when there is nothing to start."""
        named = await uow.jobs.find(job_id)
        if named is not None and self._taken_over(named, now):
            return named
        if self.pick_next is None:
            return named if named is not None and named.status == JobStatus.QUEUED else None
        if self.take_over_after is not None:
            orphans = await uow.jobs.stale(None, now - self.take_over_after)
            if orphans:
                return orphans[0]
        head = await self.pick_next(uow, now)
        return None if head is None else await uow.jobs.find(head)

    def _cannot_render(
        self, job: RenderJob, story: Story | None, cast: Sequence[Character]
    ) -> str | None:
        """Why this job can never be rendered (so it fails alone), or None."""
        if job.attempts >= self.max_attempts:
            return f"stopped after {job.attempts} attempts: each one lost its worker"
        if story is None:
            return "its story was deleted"
        if job.kind not in RENDERABLE:
            return "this version of storyloom cannot render this kind of job"
        sheet = job.kind in (JobKind.SHEET, JobKind.REROLL)
        if sheet and not any(c.id == job.character_id for c in cast):
            return "its character was removed from the story"
        return None

    @staticmethod
    async def _beats(uow: UnitOfWork, job: RenderJob, story: Story) -> Sequence[Beat]:
        if job.beats:  # the beats as they were when it was asked for
            return job.beats
        total = await uow.beats.count(story.id)
        first, last = job.first_position or 1, job.last_position or total
        return await uow.beats.page(story.id, first - 1, last - first + 1)

    def _taken_over(self, job: RenderJob, now: datetime) -> bool:
        """Whether the job runs on a dead worker: its row has lost its heartbeat."""
        return (
            job.status == JobStatus.RUNNING
            and self.take_over_after is not None
            and job.updated_at < now - self.take_over_after
        )

    async def _heartbeat(self, job_id: int) -> None:
        """Touch the running job's row so a redelivery can tell a live worker from a dead one.
        A beat that fails (an outage) is tried again within `HEARTBEAT_RETRY_S`, not a whole
        interval later: the first beat after an outage lands as soon as the database is
        back, before anyone judges the job's worker dead by the gap the outage made."""
        pause, failures = self.heartbeat_seconds, 0
        while True:
            await asyncio.sleep(pause)
            try:
                async with self.db.writing() as uow:
                    await uow.jobs.heartbeat(job_id, utc_now())
            except Exception as error:  # the next beat may land
                failures += 1
                if failures == 1:
                    log.warning("job %s: heartbeat not recorded (%s)", job_id, error)
                pause = min(self.heartbeat_seconds, HEARTBEAT_RETRY_S)
            else:
                if failures:
                    log.info("job %s: heartbeat recorded again after %d failed", job_id, failures)
                pause, failures = self.heartbeat_seconds, 0

    def _render(
        self,
        work: JobInput,
        should_cancel: Callable[[], bool],
        on_progress: Callable[[Progress], None],
    ) -> _Rendered:
        if self.limits is not None:  # before the model is even loaded
            self.limits.check(work.job.kind, len(work.beats))
        if self._renderer is None:
            self._renderer = self.load_renderer()
        guard = None if self.detector is None else ImageGuard(self.detector(), work.job.safety)
        files = render_job(
            self._renderer,
            work,
            job_folder(self.out_dir, work.job.id),
            clip_budget_bytes=self.clip_budget_bytes,
            limits=self.limits,
            on_progress=on_progress,
            should_cancel=should_cancel,
            guard=guard,
            character_dir=self.character_dir,
        )
        if guard is None:
            return files, []
        log.info(
            "job %s: image check (%s) looked at %d images, flagged %d",
            work.job.id, work.job.safety, guard.checked, len(guard.actions),
        )  # fmt: skip
        return files, guard.actions

    def _meter(self, work: JobInput, loop: asyncio.AbstractEventLoop) -> ProgressMeter:
        """The render thread's progress callback: throttled, handed to the loop unawaited
        (a slow database or chat must not slow the denoising)."""
        sheet = work.job.kind in (JobKind.SHEET, JobKind.REROLL)
        first = work.beats[0].position if work.beats and not sheet else 1

        def emit(progress: JobProgress) -> None:
            asyncio.run_coroutine_threadsafe(self._report(work.job, progress), loop)

        panels = 0 if sheet else len(work.beats)
        return ProgressMeter(
            panels,
            emit,
            first_panel=first,
            every_s=self.progress_every_s,
            make_preview=None if self.preview_every_s is None else latent_preview,
            preview_every_s=self.preview_every_s or 0.0,
        )

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

    async def _through_outage(self, what: str, step: Callable[[], Awaitable[T]]) -> T:
        """Run `step`, again while the database is out (up to `outage_patience_s`): a short
        outage delays a job's start or its outcome, it does not throw the render away."""
        deadline = time.monotonic() + self.outage_patience_s
        pauses = itertools.chain(OUTAGE_PAUSES_S, itertools.repeat(OUTAGE_PAUSES_S[-1]))
        for pause in pauses:
            try:
                return await step()
            except Exception as error:
                if not is_outage(error) or time.monotonic() + pause > deadline:
                    raise
                log.warning("%s: database unavailable (%s); retrying in %.1f s", what, error, pause)
                await asyncio.sleep(pause)
        raise AssertionError("unreachable: the pauses never end")

    async def _finish(
        self,
        job: RenderJob,
        status: JobStatus,
        *,
        files: tuple[Path, ...] = (),
        error: str | None = None,
        flagged: Sequence[SafetyAction] = (),
        story: Story | None = None,
    ) -> None:
        await self._through_outage(
            f"job {job.id}: record {status.value}",
            lambda: self._record(job, status, files, error, flagged, story),
        )
        self._finished.add(job.id)
        await self.notify(JobEvent(job, status, files, error))

    async def _record(
        self,
        job: RenderJob,
        status: JobStatus,
        files: tuple[Path, ...],
        error: str | None,
        flagged: Sequence[SafetyAction] = (),
        story: Story | None = None,
    ) -> None:
        if status == JobStatus.DONE and job.kind in (JobKind.SHEET, JobKind.REROLL):
            # a sheet makes the character's look ready to lock
            async with self.db.writing() as uow:
                if job.character_id is not None:
                    await uow.characters.update(
                        job.character_id, utc_now(), lock_state=LockState.SHEET_RENDERED
                    )
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
                if flagged and story is not None:
                    await record_safety(uow, story, job, flagged, utc_now())
