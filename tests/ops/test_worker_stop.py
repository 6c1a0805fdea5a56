"""SIGTERM during a job, in real `storyloom worker` processes on a real redis-server: the
job is finished within the grace, or handed back as queued and done by the next worker;
never lost. The same runs check /healthz, /metrics and the JSON logs of those processes."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storyloom.generation.models import load_pipeline
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.broker import BrokerOptions, TaskiqQueue, redis_broker
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.story import service
from storyloom.story.model import Actor, JobStatus, RenderJob
from storyloom.story.service import Deps
from storyloom.testing.devservices import REDIS_SERVER, RedisServer
from tests.job_rows import job_row, until_status
from tests.ops.procs import DISCORD_TOKEN, CliWorker, worker_env

if REDIS_SERVER is None and os.environ.get("STORYLOOM_TEST_REQUIRE_SERVICES") != "1":
    pytest.skip("redis-server is not installed", allow_module_level=True)

ANN = Actor("w", "c", "t", "ann", "Ann")
REDIS_PASSWORD = "redis-password-that-must-never-be-logged"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model, built once before any worker starts (workers only load it)."""
    folder = tmp_path_factory.mktemp("models")
    load_pipeline("tiny-sdxl", cache_dir=folder)
    return folder


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", password=REDIS_PASSWORD)
    server.start()
    yield server
    server.stop()


@dataclass
class Site:
    """The bot's side of one test (database, producer) and the workers started."""

    folder: Path
    db: SqlDatabase
    deps: Deps
    env: dict[str, str]
    workers: list[CliWorker]

    def start_worker(self, name: str, **settings: str) -> CliWorker:
        worker = CliWorker(name, self.folder, {**self.env, **settings})
        self.workers.append(worker)
        return worker

    async def job(self, job_id: int) -> RenderJob:
        return await job_row(self.db, job_id)

    async def wait_for(self, job_id: int, status: JobStatus, timeout: float) -> RenderJob:
        return await until_status(self.db, job_id, status, timeout=timeout, logs=self.logs)

    def logs(self) -> str:
        """The end of every worker's log, for a failure message."""
        return "\n".join(f"--- {w.log.name}\n{w.text()[-3000:]}" for w in self.workers)


@pytest.fixture
async def site(tmp_path: Path, redis: RedisServer, models: Path) -> AsyncIterator[Site]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    await upgrade_database(url)
    broker = redis_broker(BrokerOptions(redis_url=redis.url))
    await broker.startup()
    async with open_database(url) as db:
        deps = Deps(db, TaskiqQueue(broker), STYLE_NAMES, "comic")
        await service.new_story(deps, ANN, "Lighthouse")
        await service.cast_character(deps, ANN, "Mira", "a girl with red hair")
        await service.add_beat(deps, ANN, "[Mira] walks on a beach")
        await service.add_beat(deps, ANN, "[mira] climbs the stairs")
        running = Site(tmp_path, db, deps, worker_env(tmp_path, url, redis.url, models), [])
        try:
            yield running
        finally:
            for worker in running.workers:
                if worker.process.poll() is None:
                    worker.process.kill()
                    worker.process.wait(10)
            await broker.shutdown()
    for worker in running.workers:  # every line JSON, no secret in any of them
        text = worker.text()
        assert DISCORD_TOKEN not in text and REDIS_PASSWORD not in text, worker.log
        assert worker.messages()


async def test_a_job_interrupted_by_sigterm_is_handed_back_and_done_by_the_next_worker(
    site: Site,
) -> None:
    first = site.start_worker(
        "first", STORYLOOM_STEPS="200", STORYLOOM_MAX_STEPS="200", STORYLOOM_STOP_GRACE_S="0.5"
    )
    first.wait_for_line("worker ready")
    job = await service.render(site.deps, ANN)
    await site.wait_for(job.id, JobStatus.RUNNING, timeout=20)
    await asyncio.sleep(0.5)  # in the middle of a render far longer than the grace
    assert (await site.job(job.id)).status == JobStatus.RUNNING

    assert await asyncio.to_thread(first.stop, 60) == 0  # a clean exit, within seconds
    handed_back = await site.job(job.id)
    assert handed_back.status == JobStatus.QUEUED  # back in the line, not lost
    assert handed_back.attempts == 0  # a stop is not a lost worker
    assert f"job {job.id} handed back: queued again for another worker" in first.messages()
    assert f"job {job.id} done" not in first.messages()

    # a restart (or any other worker) takes it from the re-sent message
    second = site.start_worker("second", STORYLOOM_STEPS="2")
    done = await site.wait_for(job.id, JobStatus.DONE, timeout=60)
    assert done.attempts == 1
    assert (site.folder / "out" / f"job-{job.id}" / "story-page-01.png").is_file()
    assert second.messages().count(f"job {job.id} done") == 1

    status, body = second.get("/healthz")
    assert status == 200
    assert json.loads(body) == {
        "status": "ok", "role": "worker", "ready": True, "stopping": False, "database": "ok"
    }  # fmt: skip
    # the numbers are real: read from the database, measured in this process
    assert second.sample("storyloom_jobs", state="done") == 1
    assert second.sample("storyloom_jobs", state="queued") == 0
    assert second.sample("storyloom_queue_length") == 0
    assert second.sample("storyloom_render_seconds_count", kind="page", outcome="done") == 1
    assert second.sample("storyloom_render_seconds_sum", kind="page", outcome="done") > 0
    assert await asyncio.to_thread(second.stop) == 0


async def test_a_job_that_finishes_within_the_grace_is_done_by_the_stopping_worker(
    site: Site,
) -> None:
    worker = site.start_worker("only", STORYLOOM_STEPS="40", STORYLOOM_STOP_GRACE_S="120")
    worker.wait_for_line("worker ready")
    job = await service.render(site.deps, ANN)
    await site.wait_for(job.id, JobStatus.RUNNING, timeout=20)
    assert worker.sample("storyloom_queue_length") == 0
    assert worker.sample("storyloom_jobs", state="running") == 1

    worker.process.terminate()
    status, body = await asyncio.to_thread(worker.get, "/healthz")
    assert status == 503 and json.loads(body)["stopping"] is True  # draining: no new jobs

    assert await asyncio.to_thread(worker.process.wait, 60) == 0
    done = await site.job(job.id)
    assert done.status == JobStatus.DONE and done.attempts == 1
    assert worker.messages().count(f"job {job.id} done") == 1
    assert not any("handed back" in line for line in worker.messages())
