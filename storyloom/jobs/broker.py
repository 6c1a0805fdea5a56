"""The taskiq transport: one task, two brokers.

The embedded default uses taskiq's in-memory broker; the distributed mode uses Redis Streams
(taskiq-redis) with `storyloom worker` processes. Either way the message carries only a job
id: the database row is the record, and `LocalWorker.process` decides from the row whether
a delivery starts, resumes or skips the job.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from taskiq import AsyncBroker, Context, InMemoryBroker, TaskiqDepends

from storyloom.jobs.waits import wait_event

if TYPE_CHECKING:
    from taskiq_redis import RedisStreamBroker

log = logging.getLogger(__name__)

RENDER_TASK = "storyloom.render_job"
NOOP_TASK = "storyloom.noop"


@dataclass(frozen=True)
class BrokerOptions:
    """How the distributed mode talks to Redis; the defaults suit real SDXL renders."""

    redis_url: str = "redis://localhost:6379/0"
    stream: str = "storyloom:jobs"
    # A message unacknowledged this long is handed to another worker. It must be longer
    # than the longest render (a long clip on a slow GPU takes minutes), or a live worker's
    # job is redelivered: the row's fresh heartbeat keeps the second worker from redoing
    # it (it acknowledges and skips), but should the first worker then die, only the bot's
    # `requeue_stale` would send the job again.
    redelivery_after_s: float = 30 * 60
    # A job running whose row has had no heartbeat for this long belongs to a dead worker:
    # the worker that receives its redelivery runs it again. Several heartbeats long.
    take_over_after_s: float = 60.0
    heartbeat_s: float = 10.0
    # taskiq-redis 1.2.x reclaims a dead worker's messages only after a read returns a new
    # message, so an idle queue would never recover one: each worker sends a no-op this
    # often. Short next to `redelivery_after_s`, long enough to cost nothing.
    noop_every_s: float = 30.0
    # The stream is trimmed (approximately) to this many entries so acknowledged messages
    # do not pile up in Redis forever; far above any backlog of real jobs plus no-ops.
    stream_maxlen: int = 10_000
    # The reclaim step holds a Redis lock; without a timeout, a worker killed while
    # holding it would block every other worker's reclaim forever.
    reclaim_lock_timeout_s: float = 30.0
    # How long a read blocks waiting for a message; also how quickly a stopping worker
    # notices SIGTERM between jobs.
    read_block_ms: int = 2000


def memory_broker() -> InMemoryBroker:
    """The embedded default: tasks run in this process, on its event loop."""
    broker = InMemoryBroker()
    register_tasks(broker)
    return broker


def redis_broker(options: BrokerOptions) -> RedisStreamBroker:
    """The distributed mode: Redis Streams, one job at a time per worker."""
    # imported here: redis and taskiq-redis come with the `distributed` extra only
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from taskiq_redis import RedisStreamBroker

    broker = RedisStreamBroker(
        options.redis_url,
        queue_name=options.stream,
        consumer_group_name="storyloom-workers",
        xread_block=options.read_block_ms,
        maxlen=options.stream_maxlen,
        idle_timeout=int(options.redelivery_after_s * 1000),
        unacknowledged_lock_timeout=options.reclaim_lock_timeout_s,
        # The default reads 100 messages at once: they would all belong to this worker,
        # unacknowledged, while it renders the first, and wait out the redelivery timeout
        # before another worker could take them. One at a time, idle workers get the rest.
        xread_count=1,
        unacknowledged_batch_size=1,
        # "0" instead of "$": a group created after jobs were queued (first start, or a
        # Redis that lost its data) still reads them.
        consumer_id="0",
        # redis-py retries nothing by default: after a Redis restart the first command on
        # each pooled connection would fail. Retried, a send may reach Redis twice; the
        # second delivery then finds the row taken or done and is skipped.
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=5),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    register_tasks(broker)
    return broker


class Processes(Protocol):
    """What the render task needs of a worker: it processes a job by id."""

    async def process(self, job_id: int) -> None: ...


def bind_worker(broker: AsyncBroker, worker: Processes) -> None:
    """Make `worker` the one that runs this process's deliveries of the render task."""
    broker.state.worker = worker
    # The in-memory broker starts every delivery at once (its concurrency limit applies
    # only to brokers that listen), so the task itself keeps one render per process.
    broker.state.one_at_a_time = asyncio.Lock()


async def render_job_task(job_id: int, context: Context = TaskiqDepends()) -> None:
    """Run one job on the worker bound to this process's broker (see `bind_worker`)."""
    worker: Processes = context.state.worker
    async with context.state.one_at_a_time:
        await worker.process(job_id)


async def noop_task() -> None:
    """Nothing: its delivery wakes a reader so the broker reclaims dead workers' jobs."""


def register_tasks(broker: AsyncBroker) -> None:
    """Register the tasks under fixed names, so producers and workers agree on them."""
    broker.register_task(render_job_task, task_name=RENDER_TASK)
    broker.register_task(noop_task, task_name=NOOP_TASK)


@dataclass
class TaskiqQueue:
    """The core's `JobQueue` port over a taskiq broker."""

    broker: AsyncBroker

    async def submit(self, job_id: int) -> None:
        """Send the committed job's id to the workers."""
        task = self.broker.find_task(RENDER_TASK)
        if task is None:
            raise RuntimeError("the broker was built without register_tasks()")
        await task.kiq(job_id)


async def send_noops(broker: AsyncBroker, every_s: float, stop: asyncio.Event) -> None:
    """Send a no-op every `every_s` seconds until `stop` is set (see `BrokerOptions`)."""
    # Stopped by an event, not by cancelling: a cancel that lands while redis-py waits on a
    # socket timeout can come out as a TimeoutError, which the loop below would swallow.
    task = broker.find_task(NOOP_TASK)
    if task is None:
        raise RuntimeError("the broker was built without register_tasks()")
    while True:
        if await wait_event(stop, every_s):
            return
        try:
            await task.kiq()
        except Exception as error:  # Redis down: the worker loop reconnects; keep ticking
            log.warning("no-op not sent: %s", error)
