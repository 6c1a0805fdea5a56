"""`storyloom worker`: one GPU worker process of the distributed mode.

It loads the pipeline once, then takes render jobs from Redis one at a time and runs them
through `LocalWorker.process`, the same job processing as the embedded default. It does not
migrate the database (several workers would race): run `storyloom db upgrade` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from taskiq import AsyncBroker
from taskiq.receiver import Receiver
from tenacity import AsyncRetrying, RetryCallState, wait_chain, wait_fixed

from storyloom.config import Settings
from storyloom.jobs.admission import head_of_line, render_limits, store_progress
from storyloom.jobs.broker import BrokerOptions, TaskiqQueue, bind_worker, redis_broker, send_noops
from storyloom.jobs.local import JobEvent, LocalWorker
from storyloom.jobs.result_files import save_files
from storyloom.jobs.retention import GiB, sweep_forever
from storyloom.jobs.waits import wait_event
from storyloom.ops.shutdown import GracefulStop

if TYPE_CHECKING:
    from storyloom.generation.safety import Detector
    from storyloom.ops.server import Ops

log = logging.getLogger(__name__)

RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 5.0)  # then every 5 s: Redis restarts take seconds
WAKE_S = 0.5  # a stopping worker's no-ops, until its reader has ended (see `serve`)


async def log_event(event: JobEvent) -> None:
    """A worker has no chat connection: the bot learns outcomes from the rows."""
    log.info("job %s %s%s", event.job.id, event.status, f": {event.error}" if event.error else "")


async def run_worker(
    settings: Settings,
    options: BrokerOptions | None = None,
    ops: Ops | None = None,
    detector: Callable[[], Detector] | None = None,
) -> None:
    """Serve render jobs from Redis until SIGTERM or SIGINT; the job in hand is finished
    within `stop_grace_s`, or handed back (ops/shutdown.py)."""
    from storyloom.generation.renderer import StoryRenderer
    from storyloom.generation.safety import shared_detector
    from storyloom.storage import open_database

    options = options or BrokerOptions()
    stop = asyncio.Event()
    abandoned = asyncio.Event()

    def restart() -> None:
        # a render that would not stop left a thread holding the model: this process exits
        # (non-zero) so its supervisor starts a clean one
        abandoned.set()
        stop.set()

    stopping = GracefulStop(stop, settings.stop_grace_s, ops)  # ops: finish or hand back
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.request)

    # loaded before the first job, so a broken model fails the worker at start, not a job
    renderer = await asyncio.to_thread(StoryRenderer.from_settings, settings)
    # and the image safety check beside it: a worker without it fails here, never posts
    # an unchecked panel (a test may pass its own detector)
    check = detector or shared_detector
    await asyncio.to_thread(check)
    async with open_database(settings.database_url) as db:
        worker = LocalWorker(
            db,
            lambda: renderer,
            Path(settings.output_dir).resolve(),
            log_event if ops is None else ops.metrics.timed(log_event),  # ops: render seconds
            clip_budget_bytes=int(settings.clip_budget_mib * 1024 * 1024),
            limits=render_limits(settings),
            take_over_after=timedelta(seconds=options.take_over_after_s),
            heartbeat_seconds=options.heartbeat_s,
            pick_next=head_of_line,
            # the bot runs elsewhere: it reads progress and result files from the database
            store_progress=store_progress,
            save_files=save_files,
            stopping=stopping.requested,  # ops: a stop interrupts the render, and the job
            hand_back=stopping.hand_back,  # goes back to the line
            time_limit_s=settings.job_time_limit_s,
            character_dir=Path(settings.character_dir).resolve(),  # references (shared)
            on_abandoned=restart,
            detector=check,
        )
        broker = redis_broker(options)
        stopping.bind(db, TaskiqQueue(broker))  # ops
        bind_worker(broker, worker)
        broker.is_worker_process = True
        # this worker's copies of results (handed over through the database) within budget
        sweeper = asyncio.create_task(
            sweep_forever(
                Path(settings.output_dir).resolve(),
                settings.keep_outputs_hours * 3600,
                int(settings.output_disk_gib * GiB),
            )
        )
        log.info("worker ready: jobs from %s on %s", options.stream, _without_password(options))
        if ops is not None:
            ops.ready = True
        try:
            await serve(broker, stop, options.noop_every_s)
        finally:
            stop.set()  # also when the receiver failed
            sweeper.cancel()
            await asyncio.wait([sweeper])  # (suppressing CancelledError would eat our own)
            with contextlib.suppress(Exception):  # Redis may be gone; nothing left to flush
                await broker.shutdown()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            stopping.close()  # ops
    if abandoned.is_set():
        raise SystemExit("worker stopped: a render would not stop; restart the worker")
    log.info("worker stopped")


async def serve(broker: AsyncBroker, stop: asyncio.Event, noop_every_s: float) -> None:
    """`receive` until a stop, with no-ops sent beside it: every `noop_every_s` while it
    serves (they wake readers, so dead workers' jobs are reclaimed), then every `WAKE_S`
    from the stop until the reader has ended. redis-py now and then loses the cancel of a
    blocked read and returns the empty read instead (5 of 300 cancels in one try), and
    taskiq's reader then reads on until a message comes: an idle worker's SIGTERM waited
    for the next no-op (30 s by default), or for Redis to go away."""
    ended = asyncio.Event()

    async def tick() -> None:
        await send_noops(broker, noop_every_s, stop)
        await send_noops(broker, WAKE_S, ended)

    ticker = asyncio.create_task(tick())
    try:
        await receive(broker, stop)
    finally:
        ended.set()
        stop.set()  # also when the receiver failed: the ticker ends with it
        await ticker


async def receive(broker: AsyncBroker, stop: asyncio.Event) -> None:
    """Run taskiq's receiver with one job at a time; reconnect when Redis goes away."""
    while not stop.is_set():
        # a fresh schedule after each clean return: the next loss starts at the first delay
        reconnecting = AsyncRetrying(
            wait=wait_chain(*(wait_fixed(delay) for delay in RECONNECT_DELAYS_S)),
            sleep=partial(_pause, stop),  # a stop cuts the wait short
            before_sleep=_log_reconnect,
        )
        async for attempt in reconnecting:
            if stop.is_set():
                return
            with attempt:
                receiver = Receiver(
                    broker,
                    max_async_tasks=1,  # one render per GPU
                    max_prefetch=0,  # and no message held back for later: idle workers take it
                    run_startup=True,  # (re)declares the consumer group, lost with Redis's data
                )
                await receiver.listen(stop)


async def _pause(stop: asyncio.Event, delay_s: float) -> None:
    await wait_event(stop, delay_s)


def _log_reconnect(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0.0
    log.warning("lost the broker (%s); reconnecting in %.1f s", error, delay)


def _without_password(options: BrokerOptions) -> str:
    """The Redis address for logs: a URL may hold a password, which is never logged."""
    from redis.connection import parse_url

    parts = parse_url(options.redis_url)
    return f"{parts.get('host', parts.get('path', '?'))}:{parts.get('port', '')}"
