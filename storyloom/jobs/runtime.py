"""A chat side's render jobs, in one `async with`: the queue it submits to, the watcher that
reports job events to its notifier, and the upkeep that keeps jobs from being lost.

- `queue = "embedded"` (the default): taskiq's in-memory broker delivers jobs to a worker in
  this process, which renders them off the event loop, one at a time, in the fair order.
- `queue = "redis"`: jobs go through Redis Streams to `storyloom worker` processes; this
  process needs no torch. The workers save result files in the database for it.

Either way the chat side learns everything from the job rows (`JobWatcher`), so the same
notifier code serves both modes, and what ended while the bot was down is reported at start.
Jobs that never reached a worker, or lost it, are sent again: at start, then checked every
`requeue_every_s` in either mode (see `_upkeep`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from taskiq import AsyncBroker, InMemoryBroker

from storyloom.config import Settings
from storyloom.jobs.admission import head_of_line, positions, render_limits, store_progress
from storyloom.jobs.broker import BrokerOptions, TaskiqQueue, bind_worker, memory_broker
from storyloom.jobs.courier import Courier, as_courier
from storyloom.jobs.delivery import Delivery
from storyloom.jobs.events import JobEvent, Notify
from storyloom.jobs.forget import forgetter
from storyloom.jobs.recovery import requeue_stale
from storyloom.jobs.render_thread import start_in_thread
from storyloom.jobs.result_files import forget_posted_files
from storyloom.jobs.retention import GiB, sweep_forever
from storyloom.jobs.watcher import JobWatcher
from storyloom.ops.shutdown import return_to_queue
from storyloom.reader.source import shown_jobs
from storyloom.storage.engine import SqlDatabase
from storyloom.storage.outage import is_outage
from storyloom.story.model import DeletedStory, RenderJob
from storyloom.story.service import utc_now

if TYPE_CHECKING:
    from storyloom.generation.renderer import StoryRenderer
    from storyloom.generation.safety import Detector
    from storyloom.jobs.local import LocalWorker

log = logging.getLogger(__name__)

LOAD_THREAD = "storyloom-renderer-load"  # builds the in-process worker, model loaded

# A running job whose row has had no heartbeat for this long lost its worker (heartbeats
# come every 10 s): it is sent again, and whoever receives it takes it over.
HEARTBEAT_LOST_S = 60.0


@dataclass
class _Loading:
    """The in-process worker while it is built off the event loop (importing torch and
    loading the model take many seconds): renders asked for meanwhile wait for it, in line."""

    task: asyncio.Future[LocalWorker]

    async def process(self, job_id: int) -> None:
        worker = await asyncio.shield(self.task)
        await worker.process(job_id)


@dataclass
class JobRuntime:
    """What a chat side uses of its jobs."""

    queue: TaskiqQueue  # the core's JobQueue
    watcher: JobWatcher
    db: SqlDatabase
    delivery: Delivery
    # the in-process worker being built, and the in-memory broker that feeds it (embedded)
    loading: _Loading | None = None
    local_broker: InMemoryBroker | None = None

    def forget_files(self) -> Callable[[DeletedStory], Awaitable[None]]:
        """`Deps.forget_files`: a deleted story's job folders here, and its identity stores
        where this process renders (jobs/forget.py)."""

        def renderer() -> StoryRenderer | None:
            worker = self.worker  # built in the background: looked up when a story goes
            return worker.loaded_renderer if worker is not None else None

        return forgetter(self.delivery.out_dir, renderer)

    @property
    def worker(self) -> LocalWorker | None:
        """The in-process worker, once built (embedded mode)."""
        if self.loading is None or not self.loading.task.done():
            return None
        return self.loading.task.result()

    async def ready(self) -> None:
        """Wait until the in-process worker is built and its model loaded (embedded)."""
        if self.loading is not None:
            await asyncio.shield(self.loading.task)

    async def places(self) -> dict[int, int]:
        """Every waiting job's place in the fair line (1 starts next)."""
        return await self.watcher.places()

    async def drain(self) -> None:
        """Wait for the jobs this process is rendering or about to (embedded mode), and
        deliver their outcomes."""
        if self.local_broker is not None:
            await self.local_broker.wait_all()
        await self.watcher.poll()


class _Submitter(TaskiqQueue):
    """A send that fails (Redis down) is logged, not raised at the member: the job is
    committed, and the upkeep sends it again once the broker is back."""

    async def submit(self, job_id: int) -> None:
        try:
            await super().submit(job_id)
        except Exception as error:
            log.warning("job %s not sent yet (%s); it will be sent again", job_id, error)


@asynccontextmanager
async def job_runtime(
    settings: Settings,
    db: SqlDatabase,
    courier: Courier | Notify,
    *,
    observe: Notify | None = None,
    owns: Callable[[str], bool] = lambda workspace_id: True,
    load_renderer: Callable[[], StoryRenderer] | None = None,
    detector: Callable[[], Detector] | None = None,
    options: BrokerOptions | None = None,
    watch_every_s: float = 0.5,
    requeue_every_s: float = 10.0,
    stale_after_s: float = 30.0,
    heartbeat_lost_s: float = HEARTBEAT_LOST_S,
    on_ready: Callable[[], None] | None = None,
    leave_load_on_stop: Callable[[], bool] = lambda: False,
) -> AsyncIterator[JobRuntime]:
    """Start the jobs side of a chat process: `courier` (or a plain notify callback) gets
    the job events, `observe` sees them too (the metrics).

    It is ready at once: the in-process worker (embedded mode) is built in the background,
    and `on_ready` is called once it is, with its model loaded (a given `load_renderer` is
    called at the first job instead, as tests swap it). On exit the in-process worker
    hands its job in hand back to the line, and nothing is left running: a model load in
    progress is waited for, unless `leave_load_on_stop()` says the process is ending (it
    then calls `end_process_if_load_left` once it has stopped)."""
    out_dir = Path(settings.output_dir).resolve()
    shown = lambda: shown_jobs(db)  # noqa: E731  (the reader's files outlive retention)
    delivery = Delivery(
        db,
        as_courier(courier),
        out_dir,
        owns,
        min(watch_every_s, 0.5),
        keep_outputs_s=settings.keep_outputs_hours * 3600,
        shown=shown,
    )
    places = lambda: positions(db, utc_now())  # noqa: E731
    watcher = JobWatcher(db, delivery, places, owns, watch_every_s, observe)
    stopping = threading.Event()  # embedded: the process is stopping, hand the render back
    async with AsyncExitStack() as stack:
        if settings.queue == "embedded":

            def build() -> LocalWorker:
                worker = _local_worker(settings, db, out_dir, load_renderer, watcher, stopping)
                worker.take_over_after = timedelta(seconds=heartbeat_lost_s)  # a crash's job
                # the image safety check runs beside the renderer: NudeNet unless a seam
                worker.detector = detector or _nudenet
                if load_renderer is None:
                    try:
                        worker.preload()
                    except Exception:
                        # not ready; each render tries again and fails with the reason
                        log.exception("the renderer could not be loaded")
                        return worker
                if on_ready is not None:
                    loop.call_soon_threadsafe(on_ready)
                log.info("renderer loaded: ready")
                return worker

            loop = asyncio.get_running_loop()
            # a daemon thread, which a stopping process can leave behind (see
            # `leave_load_on_stop`); a pool thread of asyncio.to_thread would hold its exit
            loading = _Loading(start_in_thread(build, LOAD_THREAD))
            local_broker = memory_broker()
            bind_worker(local_broker, loading)
            broker: AsyncBroker = local_broker
            runtime = JobRuntime(_Submitter(broker), watcher, db, delivery, loading, local_broker)
        else:
            from storyloom.jobs.broker import redis_broker

            redis_url = settings.redis_url.get_secret_value()
            broker = redis_broker(options or BrokerOptions(redis_url=redis_url))
            runtime = JobRuntime(_Submitter(broker), watcher, db, delivery)
            if on_ready is not None:
                on_ready()  # nothing to load: the workers render
        await broker.startup()
        stack.push_async_callback(broker.shutdown)
        tasks = [
            asyncio.create_task(watcher.run(), name="storyloom-job-watcher"),
            asyncio.create_task(delivery.run(), name="storyloom-delivery"),
            asyncio.create_task(
                _upkeep(runtime, requeue_every_s, stale_after_s, heartbeat_lost_s),
                name="storyloom-job-upkeep",
            ),
            asyncio.create_task(
                sweep_forever(
                    out_dir,
                    settings.keep_outputs_hours * 3600,
                    int(settings.output_disk_gib * GiB),
                    shown=shown,
                ),
                name="storyloom-retention",
            ),
        ]
        try:
            yield runtime
        finally:
            for task in tasks:
                task.cancel()
            # not `await task` under suppress(CancelledError): that would also swallow a
            # cancel of this very stop, and hang on a task that ignored its own
            await asyncio.wait(tasks)
            await delivery.close()
            if runtime.local_broker is not None:
                stopping.set()  # no job starts after this; the one in hand stops and goes back
                await _wait_released(runtime.local_broker)
            if runtime.loading is not None and not runtime.loading.task.done():
                if leave_load_on_stop():
                    # the process ends next (`end_process_if_load_left`): a container stopped
                    # during a model load is not kept past its stop timeout
                    log.info("the renderer is still loading: stopping without waiting for it")
                else:
                    # a thread cannot be cancelled, and a second load in this process while
                    # it runs would break both (the model libraries build modules under a
                    # process-wide patch): let it end here
                    with contextlib.suppress(Exception):
                        await asyncio.shield(runtime.loading.task)


def end_process_if_load_left(code: int = 0) -> None:
    """After a process's stop: if a model load it left behind is still running, end the
    process here, its logs flushed, rather than at interpreter exit, where a daemon thread
    inside the model libraries' native code can abort the process."""
    if any(t.name == LOAD_THREAD and t.is_alive() for t in threading.enumerate()):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _local_worker(
    settings: Settings,
    db: SqlDatabase,
    out_dir: Path,
    load_renderer: Callable[[], StoryRenderer] | None,
    watcher: JobWatcher,
    stopping: threading.Event,
) -> LocalWorker:
    from storyloom.generation.renderer import StoryRenderer
    from storyloom.jobs.local import LocalWorker

    return LocalWorker(
        db,
        load_renderer or (lambda: StoryRenderer.from_settings(settings)),
        out_dir,
        _poking(watcher),
        clip_budget_bytes=int(settings.clip_budget_mib * 1024 * 1024),
        limits=render_limits(settings),
        take_over_after=timedelta(seconds=HEARTBEAT_LOST_S),
        pick_next=head_of_line,  # the fair line: each workspace gets its turn
        time_limit_s=settings.job_time_limit_s,
        character_dir=Path(settings.character_dir).resolve(),
        store_progress=store_progress,
        # the process is stopping: the render in hand stops at its next step and its job
        # goes back in line, for the next start (which sends every waiting job)
        stopping=stopping.is_set,
        hand_back=partial(_hand_back, db),
    )


def _nudenet() -> Detector:
    from storyloom.generation.safety import shared_detector

    return shared_detector()


async def _hand_back(db: SqlDatabase, job: RenderJob) -> None:
    if await return_to_queue(db, job):
        log.info("job %s handed back: it waits for the next start", job.id)


def _poking(watcher: JobWatcher) -> Notify:
    """The in-process worker's notify: the rows changed, so the watcher looks now."""

    async def poke(event: JobEvent) -> None:
        watcher.poke()

    return poke


async def _upkeep(
    runtime: JobRuntime, every_s: float, stale_after_s: float, heartbeat_lost_s: float
) -> None:
    """Every `every_s` while the process runs: send again what never reached a worker, or
    lost it (running without heartbeats for `heartbeat_lost_s`), and forget the stored
    files of results already delivered (redis mode: the delivery forgets each one as it
    sends it; this catches those a stop cut short).

    At start every waiting job is sent (embedded: its message died with the last process).
    Later rounds send a job waiting `stale_after_s` since it was last sent (redis mode: a
    message Redis lost, or one never sent while it was down; the in-memory broker loses
    nothing while the process lives), and in every mode a job whose worker died, also one
    killed just before a quick restart, whose heartbeat was still fresh at start.
    """
    embedded = runtime.local_broker is not None  # (its worker may still be loading)
    queued_for: timedelta | None = timedelta(0) if embedded else timedelta(seconds=stale_after_s)
    outage_rounds = 0  # rounds in a row that could not reach the database
    while True:
        outage: BaseException | None = None
        try:
            if not embedded and (dropped := await forget_posted_files(runtime.db)):
                log.info("forgot %d stored files of posted results", dropped)
        except Exception as error:
            if is_outage(error):
                outage = outage or error
            else:
                log.exception("forgetting posted results' files failed; trying again later")
        try:
            sent = await requeue_stale(
                runtime.db,
                runtime.queue,
                queued_for=queued_for,
                heartbeat_lost_for=timedelta(seconds=heartbeat_lost_s),
            )
            if sent:
                log.info("sent %d jobs again: %s", len(sent), sent)
            if embedded:
                queued_for = None  # the start's round is done
        except Exception as error:
            if is_outage(error):
                outage = outage or error
            else:
                log.exception("re-sending stale jobs failed; trying again later")
        # an outage is said once when it begins and once when it ends, like the watcher's
        if outage is not None:
            outage_rounds += 1
            if outage_rounds == 1:
                log.warning("upkeep: the database is unavailable (%s)", outage)
        elif outage_rounds:
            log.info("upkeep again after %d rounds without the database", outage_rounds)
            outage_rounds = 0
        await asyncio.sleep(every_s)


async def _wait_released(broker: InMemoryBroker, timeout_s: float = 30.0) -> None:
    """Let the in-process render stop at its next step and hand its job back."""
    try:
        async with asyncio.timeout(timeout_s):
            await broker.wait_all()
    except TimeoutError:
        log.warning("the render in hand did not stop within %.0f s", timeout_s)
