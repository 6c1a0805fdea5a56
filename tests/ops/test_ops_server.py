"""/healthz and /metrics of the operations server, in this process, over a real SQLite
file: the numbers are the database's, the text is what Prometheus parses."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from storyloom.config import Settings, load_settings
from storyloom.jobs.local import JobEvent
from storyloom.jobs.progress import JobProgress
from storyloom.ops.server import Ops, ops_server
from storyloom.ops.shutdown import return_to_queue
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.storage.owed import delivered, due, owe, retry_at
from storyloom.storage.unit_of_work import session_of
from storyloom.story import service
from storyloom.story.model import Actor, JobStatus, RenderJob
from storyloom.story.service import Deps, utc_now
from storyloom.testing.devservices import free_port

ANN = Actor("w", "c", "t", "ann", "Ann")


class Sent:
    """A JobQueue that records what was sent."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    async def submit(self, job_id: int) -> None:
        self.ids.append(job_id)


@dataclass
class Story:
    db: SqlDatabase
    deps: Deps
    url: str


@pytest.fixture
async def story(tmp_path: Path) -> AsyncIterator[Story]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"
    await upgrade_database(url)
    async with open_database(url) as db:
        deps = Deps(db, Sent(), frozenset({"comic"}), "comic")
        await service.new_story(deps, ANN, "Lighthouse")
        await service.add_beat(deps, ANN, "a lighthouse at night")
        yield Story(db, deps, url)


def ops_settings(database_url: str) -> Settings:
    return load_settings(database_url=database_url, ops_port=free_port())


async def get(settings: Settings, path: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{settings.ops_port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_the_database_jobs_by_state_and_the_waiting_line(
    story: Story,
) -> None:
    jobs = [await service.render(story.deps, ANN) for _ in range(4)]
    await service.cancel(story.deps, ANN, jobs[0].id)
    async with story.db.writing() as uow:
        await uow.jobs.set_status(jobs[1].id, JobStatus.DONE, utc_now())
    settings = ops_settings(story.url)
    async with ops_server(settings, "discord"):
        status, text = await get(settings, "/metrics")
    assert status == 200
    found = samples(text)
    expected = {"queued": 2, "running": 0, "done": 1, "failed": 0, "cancelled": 1}
    for state, count in expected.items():
        assert found["storyloom_jobs", (("state", state),)] == count
    assert found["storyloom_queue_length", ()] == 2
    assert found["storyloom_queue_oldest_wait_seconds", ()] > 0
    assert found["storyloom_database_up", ()] == 1
    assert found["storyloom_info", (("role", "discord"), ("version", "0.1.0"))] == 1


async def test_metrics_show_owed_outcomes_and_those_failing(story: Story) -> None:
    jobs = [await service.render(story.deps, ANN) for _ in range(3)]
    async with story.db.writing() as uow:
        for job in jobs:
            await uow.jobs.set_status(job.id, JobStatus.DONE, utc_now())
            await uow.jobs.mark_posted(job.id)
            await owe(session_of(uow), job.id, "w", "w/c", utc_now())
        await retry_at(session_of(uow), 1, utc_now(), "boom", failed=True)
        for _ in range(3):  # one that failed three times
            await retry_at(session_of(uow), 2, utc_now(), "Slack is down", failed=True)
        await delivered(session_of(uow), (await due(session_of(uow), utc_now()))[2],
                        frozenset(), utc_now())  # fmt: skip
    settings = ops_settings(story.url)
    async with ops_server(settings, "slack"):
        _, text = await get(settings, "/metrics")
    found = samples(text)
    owed = {state: found["storyloom_owed_messages", (("state", state),)] for state in
            ("pending", "failing", "delivered", "impossible")}  # fmt: skip
    assert owed == {"pending": 2, "failing": 1, "delivered": 1, "impossible": 0}


async def test_render_seconds_are_timed_from_start_to_outcome_and_exported(
    story: Story,
) -> None:
    job = await service.render(story.deps, ANN)
    told: list[JobStatus] = []

    async def notify(event: JobEvent) -> None:
        told.append(event.status)

    settings = ops_settings(story.url)
    async with ops_server(settings, "worker") as ops:
        timed = ops.metrics.timed(notify)
        await timed(JobEvent(job, JobStatus.RUNNING))
        await timed(JobEvent(job, JobStatus.RUNNING, progress=JobProgress(1, 2, 1, 1, None)))
        await timed(JobEvent(job, JobStatus.DONE))
        _, text = await get(settings, "/metrics")
    assert told == [JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.DONE]  # all passed on
    found = samples(text)
    labels = (("kind", "page"), ("outcome", "done"))
    assert found["storyloom_render_seconds_count", labels] == 1
    assert 0 < found["storyloom_render_seconds_sum", labels] < 5
    assert found["storyloom_render_seconds_bucket", (*labels[:1], ("le", "+Inf"), labels[1])] == 1


async def test_healthz_answers_ok_then_503_once_the_process_is_stopping(story: Story) -> None:
    settings = ops_settings(story.url)
    async with ops_server(settings, "slack") as ops:
        status, body = await get(settings, "/healthz")
        assert status == 200
        assert json.loads(body) == {
            "status": "ok", "role": "slack", "ready": False, "stopping": False, "database": "ok"
        }  # fmt: skip
        ops.stopping = True
        status, body = await get(settings, "/healthz")
    assert status == 503 and json.loads(body)["status"] == "unhealthy"


async def test_an_unreachable_database_fails_healthz_and_zeroes_database_up() -> None:
    # a PostgreSQL URL with a password, on a port where nothing listens
    settings = ops_settings(f"postgresql+asyncpg://u:pw-9f1@127.0.0.1:{free_port()}/db")
    async with ops_server(settings, "worker"):
        status, body = await get(settings, "/healthz")
        metrics_status, text = await get(settings, "/metrics")
    assert status == 503
    answer = json.loads(body)
    assert answer["database"] not in ("ok", "") and "pw-9f1" not in body
    assert metrics_status == 200
    assert samples(text)["storyloom_database_up", ()] == 0


async def test_the_server_is_off_on_port_0(story: Story) -> None:
    settings = load_settings(database_url=story.url, ops_port=0)
    async with ops_server(settings, "worker") as ops:
        assert isinstance(ops, Ops)  # the state exists, so callers need no special case
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(settings, "/healthz")


async def claimed(db: SqlDatabase, job: RenderJob) -> None:
    async with db.writing() as uow:
        assert await uow.jobs.claim(job.id, job, utc_now())


async def test_a_handed_back_job_is_queued_again_without_counting_the_attempt(
    story: Story,
) -> None:
    job = await service.render(story.deps, ANN)
    await claimed(story.db, job)
    assert await return_to_queue(story.db, job)
    async with story.db.reading() as uow:
        back = await uow.jobs.find(job.id)
    assert back is not None and (back.status, back.attempts) == (JobStatus.QUEUED, 0)


async def test_a_job_cancelled_or_taken_over_meanwhile_is_not_handed_back(
    story: Story,
) -> None:
    cancelled, taken = [await service.render(story.deps, ANN) for _ in range(2)]
    for job in (cancelled, taken):
        await claimed(story.db, job)
    await service.cancel(story.deps, ANN, cancelled.id)
    async with story.db.reading() as uow:
        running = await uow.jobs.find(taken.id)
    assert running is not None
    await claimed(story.db, running)  # another worker took it over: a second attempt

    assert not await return_to_queue(story.db, cancelled)
    assert not await return_to_queue(story.db, taken)
    async with story.db.reading() as uow:
        after = [await uow.jobs.find(j.id) for j in (cancelled, taken)]
    assert [(j.status, j.attempts) for j in after if j] == [
        (JobStatus.CANCELLED, 1), (JobStatus.RUNNING, 2)
    ]  # fmt: skip


async def health_command(settings: Settings) -> tuple[int, str]:
    """`storyloom health` in a child process, with the settings' port (the container
    health check)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STORYLOOM_")}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "storyloom.cli", "health",
        env={**clean, "STORYLOOM_OPS_PORT": str(settings.ops_port)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await child.communicate()
    assert child.returncode is not None
    return child.returncode, out.decode()


async def test_the_health_command_exits_0_while_healthy_and_1_while_stopping(
    story: Story,
) -> None:
    settings = ops_settings(story.url)
    async with ops_server(settings, "discord") as ops:
        code, out = await health_command(settings)
        assert code == 0 and json.loads(out)["status"] == "ok"
        ops.stopping = True
        code, out = await health_command(settings)
        assert code == 1 and json.loads(out)["stopping"] is True
    code, out = await health_command(settings)  # nothing listens any more
    assert code == 1 and "no answer from http://127.0.0.1:" in out
    code, out = await health_command(load_settings(ops_port=0))
    assert code == 2 and "set STORYLOOM_OPS_PORT" in out
