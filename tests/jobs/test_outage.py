"""A database outage in the middle of a render costs the render nothing: the worker keeps
rendering, waits out the outage to record the outcome, and the attempt is not spent.
Real PostgreSQL, stopped and started again (a cluster of this test's own)."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from storyloom.generation.safety import SafetyAction
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.artifacts import JobInput
from storyloom.jobs.events import JobEvent
from storyloom.jobs.local import LocalWorker
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.story import service
from storyloom.story.model import Actor, JobStatus
from storyloom.story.service import Deps
from storyloom.testing.devservices import PostgresServer, postgres_bindir
from tests.job_rows import job_row
from tests.story.fakes import SentIds

pytestmark = pytest.mark.postgres
ANN = Actor("w", "c", "t", "ann", "Ann")


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    # not under tmp_path: the `postgres` user cannot enter pytest's root-only folders
    own = PostgresServer(Path(tempfile.mkdtemp(prefix="storyloom-pg-")))
    own.start()
    yield own
    own.remove()


@pytest.fixture
async def db(server: PostgresServer) -> AsyncIterator[SqlDatabase]:
    url = await server.create_database("outage")
    await upgrade_database(url)
    async with open_database(url) as database:
        yield database


class SlowWorker(LocalWorker):
    """The real worker; its render takes `seconds` (the outage happens meanwhile)."""

    seconds: float = 4.0

    def _render(
        self, work: JobInput, should_cancel: Callable[[], bool], on_progress: object
    ) -> tuple[list[Path], list[SafetyAction]]:
        time.sleep(self.seconds)
        out = self.out_dir / f"job-{work.job.id}"
        out.mkdir(parents=True, exist_ok=True)
        (out / "page.png").write_bytes(b"a page")
        return [out / "page.png"], []


async def test_a_render_outlives_a_database_outage_and_keeps_its_attempt(
    db: SqlDatabase, server: PostgresServer, tmp_path: Path
) -> None:
    deps = Deps(db, SentIds(), STYLE_NAMES, "comic")
    await service.new_story(deps, ANN, "Lighthouse")
    await service.add_beat(deps, ANN, "a beach at dawn")
    job = await service.render(deps, ANN)
    events: list[JobEvent] = []

    async def notify(event: JobEvent) -> None:
        events.append(event)

    worker = SlowWorker(
        db, lambda: None, tmp_path / "out", notify,  # type: ignore[arg-type, return-value]
        cancel_poll_seconds=0.1, heartbeat_seconds=0.2,
    )  # fmt: skip
    rendering = asyncio.create_task(worker.process(job.id))
    while (await job_row(db, job.id)).status != JobStatus.RUNNING:
        await asyncio.sleep(0.05)
    await asyncio.to_thread(server.stop)  # cancel checks and heartbeats now fail
    await asyncio.sleep(worker.seconds + 1)  # the render ends while the database is down
    assert not rendering.done()  # waiting to record the outcome, not failed
    await asyncio.to_thread(server.start)
    await asyncio.wait_for(rendering, 60)
    done = await job_row(db, job.id)
    assert (done.status, done.attempts, done.result_files) == (JobStatus.DONE, 1, ("page.png",))
    assert [e.status for e in events] == [JobStatus.RUNNING, JobStatus.DONE]


class HeldWorker(SlowWorker):
    """The real worker; its render ends when the test says so."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.end = threading.Event()

    def _render(
        self, work: JobInput, should_cancel: Callable[[], bool], on_progress: object
    ) -> tuple[list[Path], list[SafetyAction]]:
        self.end.wait(60)
        self.seconds = 0
        return super()._render(work, should_cancel, on_progress)


async def test_a_live_workers_job_is_not_taken_over_once_the_database_is_back(
    db: SqlDatabase, server: PostgresServer, tmp_path: Path
) -> None:
    """The outage outlasts the take-over time, and the render ends as it begins. When the
    database is back, the heartbeat lands within a second (it went on while the outcome
    waited, and a failed beat is tried again soon), so a second worker that receives the
    job's message then leaves it alone: it is rendered once."""
    deps = Deps(db, SentIds(), STYLE_NAMES, "comic")
    await service.new_story(deps, ANN, "Lighthouse")
    await service.add_beat(deps, ANN, "a beach at dawn")
    job = await service.render(deps, ANN)

    async def notify(event: JobEvent) -> None:
        """The workers' events are not what this test is about."""

    take_over = timedelta(seconds=3)

    def worker(name: str) -> HeldWorker:
        return HeldWorker(
            db, lambda: None, tmp_path / name, notify,  # type: ignore[arg-type, return-value]
            cancel_poll_seconds=0.1, heartbeat_seconds=1.0, take_over_after=take_over,
        )  # fmt: skip

    live, other = worker("live"), worker("other")
    rendering = asyncio.create_task(live.process(job.id))
    while (await job_row(db, job.id)).status != JobStatus.RUNNING:
        await asyncio.sleep(0.05)
    await asyncio.to_thread(server.stop)
    live.end.set()  # the render ends: its outcome waits for the database
    await asyncio.sleep(take_over.total_seconds() + 0.5)
    await asyncio.to_thread(server.start)
    await asyncio.sleep(1.5)  # the outcome's next try is seconds away, a beat's is not
    other.end.set()
    await asyncio.wait_for(other.process(job.id), 60)  # a re-sent message
    await asyncio.wait_for(rendering, 60)
    done = await job_row(db, job.id)
    assert (done.status, done.attempts) == (JobStatus.DONE, 1)
    assert not (tmp_path / "other").exists()  # the second worker rendered nothing
