"""The metrics of one storyloom process, in a registry of its own.

Jobs by state and the waiting line come from the database at each scrape (`refresh`); the
render-seconds histogram is measured in the process that renders (a worker, or a bot in
the embedded mode) by wrapping its job-event callback (`timed`); GPU memory is read from
torch when scraped (`gpu.py`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from storyloom import __version__
from storyloom.ops.gpu import GpuMemoryCollector
from storyloom.ops.job_counts import JobCounts
from storyloom.story.model import JobStatus
from storyloom.story.service import utc_now

if TYPE_CHECKING:  # jobs.local imports the renderer (torch); the slim bot image has none
    from storyloom.jobs.local import JobEvent

# From a tiny model's second to a long clip on a slow GPU.
RENDER_BUCKETS_S = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, float("inf"))


class Metrics:
    """Every metric storyloom exports; one instance per process (no global registry)."""

    def __init__(self, role: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        r.register(GpuMemoryCollector())
        Gauge("storyloom_info", "This process: its role and storyloom's version.",
              ["role", "version"], registry=r).labels(role, __version__).set(1)  # fmt: skip
        self.jobs = Gauge(
            "storyloom_jobs", "Render jobs in the database, by state.", ["state"], registry=r
        )
        self.queue_length = Gauge(
            "storyloom_queue_length", "Render jobs waiting for a worker.", registry=r
        )
        self.oldest_wait = Gauge(
            "storyloom_queue_oldest_wait_seconds",
            "How long the oldest waiting job has waited (0 when none waits).",
            registry=r,
        )
        self.owed = Gauge(
            "storyloom_owed_messages",
            "Job outcomes owed to chat members (the outbox), by state; `failing` ones are "
            "pending after repeated failures (still retried: see the log).",
            ["state"],
            registry=r,
        )
        self.database_up = Gauge(
            "storyloom_database_up", "1 if the last scrape could read the database.", registry=r
        )
        self.render_seconds = Histogram(
            "storyloom_render_seconds",
            "Wall time of the render jobs this process ran, from start to outcome.",
            ["kind", "outcome"],
            buckets=RENDER_BUCKETS_S,
            registry=r,
        )
        self.handed_back = Counter(
            "storyloom_jobs_handed_back",
            "Jobs this process put back in the line because it was stopping.",
            registry=r,
        )

    def record_counts(self, counts: JobCounts | None) -> None:
        """Set the database gauges from a fresh read; None: the read failed."""
        self.database_up.set(0 if counts is None else 1)
        if counts is None:
            return
        for status, count in counts.by_state.items():
            self.jobs.labels(status.value).set(count)
        self.queue_length.set(counts.queue_length)
        for state, count in counts.owed.items():
            self.owed.labels(state).set(count)
        self.oldest_wait.set(counts.oldest_wait_s(utc_now()))

    def timed(self, notify: Callable[[JobEvent], Awaitable[None]]) -> Callable[
        [JobEvent], Awaitable[None]
    ]:  # fmt: skip
        """`notify`, also timing each job from its start to its outcome."""
        started: dict[int, float] = {}

        async def observe(event: JobEvent) -> None:
            job_id = event.job.id
            if event.status == JobStatus.RUNNING:
                if event.progress is None:  # the start, not one of its progress reports
                    started[job_id] = time.monotonic()
            elif (start := started.pop(job_id, None)) is not None:
                seconds = time.monotonic() - start
                self.render_seconds.labels(event.job.kind.value, event.status.value).observe(
                    seconds
                )
            await notify(event)

        return observe

    def exposition(self) -> bytes:
        """The Prometheus text format of everything above."""
        return generate_latest(self.registry)
