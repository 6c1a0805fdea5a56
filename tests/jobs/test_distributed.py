"""The distributed mode for real: a redis-server started here, `run_worker` child processes
with the tiny model, one database (a SQLite file shared by path, or PostgreSQL), and the bot
side's `job_runtime` (queue = redis) with its own output folder, told everything through the
database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from storyloom.config import load_settings
from storyloom.generation.models import load_pipeline
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.events import JobEvent
from storyloom.jobs.runtime import job_runtime
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.storage.job_watch import load_artifacts, save_artifacts
from storyloom.storage.unit_of_work import SqlUnitOfWork
from storyloom.story import service
from storyloom.story.model import Actor, JobStatus, RenderJob
from storyloom.story.service import Deps
from storyloom.testing.devservices import (
    REDIS_SERVER,
    RedisServer,
    WorkerProcess,
    fast_options,
    tiny_settings,
)
from tests.job_rows import job_row, until_status
from tests.story.fakes import SentIds

if REDIS_SERVER is None and os.environ.get("STORYLOOM_TEST_REQUIRE_SERVICES") != "1":
    pytest.skip("redis-server is not installed", allow_module_level=True)

ANN = Actor("w", "c", "t", "ann", "Ann")
T = TypeVar("T")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model, built once before any worker starts (workers only load it)."""
    folder = tmp_path_factory.mktemp("models")
    load_pipeline("tiny-sdxl", cache_dir=folder)
    return folder


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


# Bounds on waits for worker processes: on a loaded machine (a 2-core CI runner beside other
# jobs) a 2-step render of the tiny model has taken tens of seconds. Each test is still
# bounded by pytest-timeout.
LOADED_S = 180.0


class Recorder:
    """The bot side's notifier: every event it is told."""

    def __init__(self) -> None:
        self.events: list[JobEvent] = []

    async def __call__(self, event: JobEvent) -> None:
        self.events.append(event)

    def finals(self, job_id: int) -> list[JobEvent]:
        return [e for e in self.events if e.job.id == job_id and not e.status.active]


@dataclass
class Cluster:
    """The bot side of one test (its database, job runtime and notifier) and the workers."""

    folder: Path
    db: SqlDatabase
    redis: RedisServer
    models: Path
    url: str
    workers: list[WorkerProcess]
    deps: Deps | None = None
    seen: Recorder | None = None

    def start_worker(self, name: str, steps: int = 2) -> WorkerProcess:
        settings = tiny_settings(self.folder, self.url, self.models, steps)
        worker = WorkerProcess(name, self.folder, settings, fast_options(self.redis.url))
        self.workers.append(worker)
        return worker

    @asynccontextmanager
    async def bot(self, **runtime_options: float) -> AsyncIterator[Recorder]:
        """A bot process's jobs side (queue = redis), with its own output folder: results
        reach it through the database, not a shared disk."""
        settings = load_settings(queue="redis", output_dir=self.folder / "bot-out")
        seen = Recorder()
        options = fast_options(self.redis.url)
        runtime = job_runtime(
            settings, self.db, seen, options=options, watch_every_s=0.1, **runtime_options
        )
        async with runtime as jobs:
            self.deps, self.seen = Deps(self.db, jobs.queue, STYLE_NAMES, "comic"), seen
            try:
                yield seen
            finally:
                self.deps = self.seen = None

    async def render(self) -> RenderJob:
        assert self.deps is not None, "no bot is running"
        return await service.render(self.deps, ANN)

    async def job(self, job_id: int) -> RenderJob:
        return await job_row(self.db, job_id)

    async def wait_for(self, job_id: int, status: JobStatus, timeout: float) -> RenderJob:
        return await until_status(self.db, job_id, status, timeout=timeout, logs=self.logs)

    async def reported(self, seen: Recorder, job_id: int, timeout: float = LOADED_S) -> JobEvent:
        async def told() -> JobEvent:
            while not seen.finals(job_id):
                await asyncio.sleep(0.05)
            return seen.finals(job_id)[0]

        return await self._within(told(), timeout, f"job {job_id} was never reported")

    def logs(self) -> str:
        """The end of every worker's log, for a failure message."""
        return "\n".join(f"--- {w.log.name}\n{w.text()[-3000:]}" for w in self.workers)

    async def _within(self, waiting: Awaitable[T], timeout: float, what: str) -> T:
        try:
            return await asyncio.wait_for(waiting, timeout)
        except TimeoutError:
            raise AssertionError(f"{what}:\n{self.logs()}") from None


@pytest.fixture
async def cluster(
    tmp_path: Path, redis: RedisServer, models: Path, database_url: str
) -> AsyncIterator[Cluster]:
    url = database_url  # a SQLite file shared by path, or a PostgreSQL database
    await upgrade_database(url)
    async with open_database(url) as db:
        offline = Deps(db, SentIds(), STYLE_NAMES, "comic")
        await service.new_story(offline, ANN, "Lighthouse")
        await service.cast_character(offline, ANN, "Mira", "a girl with red hair")
        await service.add_beat(offline, ANN, "[Mira] walks on a beach")
        await service.add_beat(offline, ANN, "[mira] climbs the stairs")
        running = Cluster(tmp_path, db, redis, models, url, [])
        try:
            yield running
        finally:
            for worker in running.workers:
                if worker.process.poll() is None:
                    worker.terminate()


async def stored_files(db: SqlDatabase, job_id: int) -> dict[str, bytes]:
    async with db.reading() as uow:
        assert isinstance(uow, SqlUnitOfWork)
        return await load_artifacts(uow.session, job_id)


async def until_forgotten(db: SqlDatabase, job_id: int, timeout_s: float = 5.0) -> None:
    """Wait (a while at most) until the database holds no files of the job."""
    for _ in range(int(timeout_s / 0.05)):
        if not await stored_files(db, job_id):
            return
        await asyncio.sleep(0.05)


async def test_a_job_sent_through_redis_is_rendered_elsewhere_and_posted_here(
    cluster: Cluster,
) -> None:
    worker = cluster.start_worker("w1")
    worker.wait_ready()
    async with cluster.bot() as seen:
        job = await cluster.render()
        done = await cluster.reported(seen, job.id)
        await until_forgotten(cluster.db, job.id)  # posted: the database drops its copy
    assert done.status == JobStatus.DONE and done.job.attempts == 1
    names = ["story-page-01.png", "story.pdf", "story.zip"]
    assert [f.name for f in done.files] == names
    bot_copy = cluster.folder / "bot-out" / f"job-{job.id}"
    worker_copy = cluster.folder / "out" / f"job-{job.id}"
    assert all(f.parent == bot_copy for f in done.files)
    assert [f.read_bytes() for f in done.files] == [(worker_copy / n).read_bytes() for n in names]
    assert await stored_files(cluster.db, job.id) == {}
    async with cluster.db.reading() as uow:
        assert await uow.jobs.unposted() == []
    assert worker.terminate() == 0  # SIGTERM: a clean exit
    assert "worker stopped" in worker.text()


async def test_a_job_whose_worker_is_killed_finishes_on_the_other_and_is_posted_once(
    cluster: Cluster,
) -> None:
    first, second = cluster.start_worker("w1", steps=40), cluster.start_worker("w2", steps=40)
    first.wait_ready()
    second.wait_ready()
    async with cluster.bot() as seen:
        job = await cluster.render()
        await cluster.wait_for(job.id, JobStatus.RUNNING, timeout=LOADED_S)
        running = f"job {job.id} running"
        owner = first if first.has_line(running) else second
        other = second if owner is first else first
        await asyncio.sleep(0.5)  # in the middle of the render
        assert (await cluster.job(job.id)).status == JobStatus.RUNNING
        owner.kill()
        done = await cluster.reported(seen, job.id, timeout=LOADED_S)
        await asyncio.sleep(1.0)  # the watcher keeps polling: still one report
    assert done.status == JobStatus.DONE and done.job.attempts == 2
    assert len(seen.finals(job.id)) == 1
    assert other.has_line(running)
    assert other.text().count(f"job {job.id} done") == 1
    assert f"job {job.id} done" not in owner.text()


async def test_jobs_queued_before_a_bot_restart_are_all_rendered_and_posted_once(
    cluster: Cluster,
) -> None:
    async with cluster.bot() as before:
        jobs = [await cluster.render() for _ in range(3)]  # no worker is running yet
    assert before.events == [] or all(e.status.active for e in before.events)
    worker = cluster.start_worker("w1")
    worker.wait_ready()
    await cluster.wait_for(jobs[0].id, JobStatus.DONE, timeout=LOADED_S)  # while no bot runs
    async with cluster.bot() as after:
        reports = [await cluster.reported(after, job.id) for job in jobs]
        await asyncio.sleep(0.5)
    assert [r.status for r in reports] == [JobStatus.DONE] * 3
    assert [len(after.finals(job.id)) for job in jobs] == [1, 1, 1]
    assert all(r.files and r.files[0].is_file() for r in reports)


async def test_workers_reconnect_after_redis_restarts(cluster: Cluster) -> None:
    worker = cluster.start_worker("w1")
    worker.wait_ready()
    async with cluster.bot() as seen:
        first = await cluster.render()
        await cluster.reported(seen, first.id)

        cluster.redis.stop()
        # down longer than the client's retries (about 5 s): the worker loses its reader
        await asyncio.sleep(7)
        cluster.redis.start()
        later = await cluster.render()
        assert (await cluster.reported(seen, later.id)).status == JobStatus.DONE
    assert "lost the broker" in worker.text()
    assert worker.process.poll() is None


async def test_a_job_asked_for_while_redis_was_down_is_sent_again_and_rendered(
    cluster: Cluster,
) -> None:
    worker = cluster.start_worker("w1")
    worker.wait_ready()
    async with cluster.bot(stale_after_s=1.0, requeue_every_s=0.3) as seen:
        cluster.redis.stop()
        job = await cluster.render()  # committed; its message could not be sent
        cluster.redis.start()
        assert (await cluster.reported(seen, job.id, timeout=LOADED_S)).status == JobStatus.DONE


async def test_files_left_behind_by_a_stopped_bot_are_forgotten_at_the_next_start(
    cluster: Cluster,
) -> None:
    worker = cluster.start_worker("w1")
    worker.wait_ready()
    async with cluster.bot() as seen:
        job = await cluster.render()
        await cluster.reported(seen, job.id)
    async with cluster.db.writing() as uow:  # as if the stop came between post and forget
        assert isinstance(uow, SqlUnitOfWork)
        await save_artifacts(
            uow.session, job.id, [cluster.folder / "out" / f"job-{job.id}" / "story.pdf"]
        )
    assert await stored_files(cluster.db, job.id) != {}
    async with cluster.bot():
        await until_forgotten(cluster.db, job.id)
    assert await stored_files(cluster.db, job.id) == {}
