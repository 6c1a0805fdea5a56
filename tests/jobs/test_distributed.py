"""The distributed mode for real: a redis-server started here, `run_worker` child processes
with the tiny model, and one SQLite file shared by path."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storyloom.generation.models import load_pipeline
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.broker import TaskiqQueue, redis_broker
from storyloom.jobs.devservices import (
    REDIS_SERVER,
    RedisServer,
    WorkerProcess,
    fast_options,
    tiny_settings,
)
from storyloom.jobs.recovery import pending_posts
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.story import service
from storyloom.story.model import Actor, JobStatus, RenderJob
from storyloom.story.service import Deps

if REDIS_SERVER is None and os.environ.get("STORYLOOM_TEST_REQUIRE_SERVICES") != "1":
    pytest.skip("redis-server is not installed", allow_module_level=True)

ANN = Actor("w", "c", "t", "ann", "Ann")


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


@dataclass
class Cluster:
    """The bot side of one test: the database, a producer broker and the workers."""

    folder: Path
    db: SqlDatabase
    deps: Deps
    redis: RedisServer
    models: Path
    url: str
    workers: list[WorkerProcess]

    def start_worker(self, name: str, steps: int = 2) -> WorkerProcess:
        settings = tiny_settings(self.folder, self.url, self.models, steps)
        worker = WorkerProcess(name, self.folder, settings, fast_options(self.redis.url))
        self.workers.append(worker)
        return worker

    async def job(self, job_id: int) -> RenderJob:
        async with self.db.reading() as uow:
            found = await uow.jobs.find(job_id)
        assert found is not None
        return found

    async def wait_for(self, job_id: int, status: JobStatus, timeout: float) -> RenderJob:
        async def reached() -> RenderJob:
            while (job := await self.job(job_id)).status != status:
                await asyncio.sleep(0.1)
            return job

        logs = "\n".join(f"--- {w.log.name}\n{w.text()[-3000:]}" for w in self.workers)
        try:
            return await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            raise AssertionError(f"job {job_id} never reached {status}:\n{logs}") from None


@pytest.fixture
async def cluster(tmp_path: Path, redis: RedisServer, models: Path) -> AsyncIterator[Cluster]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    await upgrade_database(url)
    broker = redis_broker(fast_options(redis.url))
    await broker.startup()
    async with open_database(url) as db:
        deps = Deps(db, TaskiqQueue(broker), STYLE_NAMES, "comic")
        await service.new_story(deps, ANN, "Lighthouse")
        await service.cast_character(deps, ANN, "Mira", "a girl with red hair")
        await service.add_beat(deps, ANN, "[Mira] walks on a beach")
        await service.add_beat(deps, ANN, "[mira] climbs the stairs")
        running = Cluster(tmp_path, db, deps, redis, models, url, [])
        try:
            yield running
        finally:
            for worker in running.workers:
                if worker.process.poll() is None:
                    worker.terminate()
            await broker.shutdown()


async def test_a_job_sent_through_redis_is_rendered_by_a_worker_process(cluster: Cluster) -> None:
    worker = cluster.start_worker("w1")
    worker.wait_ready()
    job = await service.render(cluster.deps, ANN)
    done = await cluster.wait_for(job.id, JobStatus.DONE, timeout=30)
    assert done.attempts == 1
    assert (cluster.folder / "out" / f"job-{job.id}" / "story-page-01.png").is_file()
    assert [j.id for j in await pending_posts(cluster.db)] == [job.id]
    assert worker.terminate() == 0  # SIGTERM: a clean exit
    assert "worker stopped" in worker.text()


async def test_a_job_whose_worker_is_killed_finishes_on_the_other_worker_once(
    cluster: Cluster,
) -> None:
    first, second = cluster.start_worker("w1", steps=40), cluster.start_worker("w2", steps=40)
    first.wait_ready()
    second.wait_ready()
    job = await service.render(cluster.deps, ANN)
    await cluster.wait_for(job.id, JobStatus.RUNNING, timeout=10)
    running = f"job {job.id} running"
    owner = first if first.has_line(running) else second
    other = second if owner is first else first
    await asyncio.sleep(0.5)  # in the middle of the render
    assert (await cluster.job(job.id)).status == JobStatus.RUNNING
    owner.kill()

    done = await cluster.wait_for(job.id, JobStatus.DONE, timeout=40)
    assert done.attempts == 2
    assert other.has_line(running)
    assert other.text().count(f"job {job.id} done") == 1
    assert f"job {job.id} done" not in owner.text()
    assert [j.id for j in await pending_posts(cluster.db)] == [job.id]


async def test_workers_reconnect_after_redis_restarts(cluster: Cluster) -> None:
    worker = cluster.start_worker("w1")
    worker.wait_ready()
    first = await service.render(cluster.deps, ANN)
    await cluster.wait_for(first.id, JobStatus.DONE, timeout=30)

    cluster.redis.stop()
    # down longer than the client's retries (about 5 s): the worker loses its reader
    await asyncio.sleep(7)
    cluster.redis.start()
    later = await service.render(cluster.deps, ANN)
    await cluster.wait_for(later.id, JobStatus.DONE, timeout=30)
    assert "lost the broker" in worker.text()
    assert worker.process.poll() is None
