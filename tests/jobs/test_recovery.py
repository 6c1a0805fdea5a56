"""The row decides what a delivery does: redelivered done jobs are skipped, a dead worker's
job is taken over ahead of the line, a restarted bot finds unposted results and stale
jobs. SQLite and PostgreSQL, and the embedded in-memory broker end to end."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from storyloom.generation.models import load_pipeline
from storyloom.generation.renderer import RenderSettings, StoryRenderer
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import head_of_line
from storyloom.jobs.broker import TaskiqQueue, bind_worker, memory_broker
from storyloom.jobs.local import JobEvent, LocalWorker
from storyloom.jobs.recovery import requeue_stale
from storyloom.storage import SqlDatabase
from storyloom.story import service
from storyloom.story.model import Actor, JobStatus, RenderJob
from storyloom.story.service import Deps, utc_now
from tests.story.fakes import SentIds

ANN = Actor("w", "c", "t", "ann", "Ann")


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> StoryRenderer:
    loaded = load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))
    small = RenderSettings(width=64, height=64, steps=2)
    return StoryRenderer(loaded, small, tmp_path_factory.mktemp("stores"))


class Events:
    def __init__(self) -> None:
        self.seen: list[JobEvent] = []

    async def __call__(self, event: JobEvent) -> None:
        if event.progress is None:  # status changes only; progress has its own tests
            self.seen.append(event)


async def queued_jobs(db: SqlDatabase, count: int) -> list[RenderJob]:
    deps = Deps(db, SentIds(), STYLE_NAMES, "comic")
    await service.new_story(deps, ANN, "Lighthouse")
    await service.add_beat(deps, ANN, "a beach at dawn")
    return [await service.render(deps, ANN) for _ in range(count)]


async def queued_job(db: SqlDatabase) -> RenderJob:
    return (await queued_jobs(db, 1))[0]


async def pending_posts(db: SqlDatabase) -> Sequence[RenderJob]:
    """Ended jobs whose outcome no chat side has reported yet."""
    async with db.reading() as uow:
        return await uow.jobs.unposted()


async def mark_posted(db: SqlDatabase, job_id: int) -> bool:
    async with db.writing() as uow:
        return await uow.jobs.mark_posted(job_id)


async def row(db: SqlDatabase, job_id: int) -> RenderJob:
    async with db.reading() as uow:
        job = await uow.jobs.find(job_id)
    assert job is not None
    return job


async def age(db: SqlDatabase, job: RenderJob, status: JobStatus, by: timedelta) -> None:
    """Put the row in `status`, last touched `by` ago (a worker that stopped beating)."""
    async with db.writing() as uow:
        if status == JobStatus.RUNNING:
            assert await uow.jobs.claim(job.id, await row_in(uow, job.id), utc_now())
        await uow.jobs.set_status(job.id, status, utc_now() - by)


async def row_in(uow: object, job_id: int) -> RenderJob:
    job = await uow.jobs.find(job_id)  # type: ignore[attr-defined]
    assert job is not None
    return job  # type: ignore[no-any-return]


def worker(db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path, seen: Events) -> LocalWorker:
    return LocalWorker(
        db, lambda: renderer, tmp_path / "out", seen, cancel_poll_seconds=0.0,
        take_over_after=timedelta(seconds=30), heartbeat_seconds=0.05,
    )  # fmt: skip


async def test_a_redelivered_done_job_is_skipped(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    seen = Events()
    job = await queued_job(db)
    await worker(db, renderer, tmp_path, seen).process(job.id)
    await worker(db, renderer, tmp_path, seen).process(job.id)  # the redelivery
    assert [e.status for e in seen.seen] == [JobStatus.RUNNING, JobStatus.DONE]
    assert (await row(db, job.id)).attempts == 1


async def test_a_running_job_with_a_live_heartbeat_is_left_to_its_worker(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    seen = Events()
    job = await queued_job(db)
    await age(db, job, JobStatus.RUNNING, timedelta(seconds=1))
    await worker(db, renderer, tmp_path, seen).process(job.id)
    assert seen.seen == []
    assert (await row(db, job.id)).status == JobStatus.RUNNING


async def test_a_dead_workers_job_is_taken_over_and_counts_an_attempt(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    seen = Events()
    job = await queued_job(db)
    await age(db, job, JobStatus.RUNNING, timedelta(minutes=5))
    await worker(db, renderer, tmp_path, seen).process(job.id)
    done = await row(db, job.id)
    assert (done.status, done.attempts) == (JobStatus.DONE, 2)


async def test_a_dead_workers_job_keeps_its_place_at_the_head_of_a_backlog(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    seen = Events()
    orphan, *backlog = await queued_jobs(db, 4)
    await age(db, orphan, JobStatus.RUNNING, timedelta(minutes=5))
    fair = worker(db, renderer, tmp_path, seen)
    fair.pick_next = head_of_line
    await fair.process(backlog[-1].id)  # the newest waiting job's message frees a worker
    assert [(e.job.id, e.status) for e in seen.seen] == [
        (orphan.id, JobStatus.RUNNING),
        (orphan.id, JobStatus.DONE),
    ]
    assert [(await row(db, j.id)).status for j in backlog] == [JobStatus.QUEUED] * 3


async def test_a_job_that_lost_its_worker_too_often_fails(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    seen = Events()
    job = await queued_job(db)
    for _ in range(3):
        await age(db, job, JobStatus.RUNNING, timedelta(minutes=5))
    await worker(db, renderer, tmp_path, seen).process(job.id)
    failed = await row(db, job.id)
    assert failed.status == JobStatus.FAILED and "3 attempts" in (failed.error or "")


async def test_a_result_is_marked_posted_once_and_leaves_the_pending_list(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    job = await queued_job(db)
    assert await pending_posts(db) == []
    await worker(db, renderer, tmp_path, Events()).process(job.id)
    assert [j.id for j in await pending_posts(db)] == [job.id]
    assert await mark_posted(db, job.id) is True
    assert await mark_posted(db, job.id) is False
    assert await pending_posts(db) == []


async def test_requeue_sends_old_queued_and_heartbeat_lost_jobs_only(db: SqlDatabase) -> None:
    fresh, old, alive, dead = await queued_jobs(db, 4)
    await age(db, old, JobStatus.QUEUED, timedelta(minutes=10))
    await age(db, alive, JobStatus.RUNNING, timedelta(seconds=5))
    await age(db, dead, JobStatus.RUNNING, timedelta(minutes=10))
    sent = SentIds()
    assert await requeue_stale(db, sent) == [old.id, dead.id]
    assert sent.ids == [old.id, dead.id]
    assert fresh.id not in sent.ids


async def test_the_embedded_broker_runs_jobs_one_at_a_time_through_the_same_task(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    broker = memory_broker()
    seen = Events()
    bind_worker(broker, worker(db, renderer, tmp_path, seen))
    await broker.startup()
    deps = Deps(db, TaskiqQueue(broker), STYLE_NAMES, "comic")
    await service.new_story(deps, ANN, "Lighthouse")
    await service.add_beat(deps, ANN, "a beach at dawn")
    jobs = [await service.render(deps, ANN) for _ in range(2)]
    await broker.wait_all()
    await broker.shutdown()
    order = [(e.job.id, e.status) for e in seen.seen]
    first, second = jobs[0].id, jobs[1].id
    assert order == [
        (first, JobStatus.RUNNING), (first, JobStatus.DONE),
        (second, JobStatus.RUNNING), (second, JobStatus.DONE),
    ]  # fmt: skip
