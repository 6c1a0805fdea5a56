"""Poison jobs fail alone: nothing one job does can hang the worker, and a job that cannot
be rendered is failed with its reason while the delivery goes on to the next job. The real
worker on a real database; only the render step is replaced where a test needs a render
that misbehaves."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from storyloom.generation.renderer import RenderCancelled
from storyloom.generation.safety import SafetyAction
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import head_of_line
from storyloom.jobs.artifacts import JobInput
from storyloom.jobs.courier import as_courier
from storyloom.jobs.delivery import Delivery
from storyloom.jobs.events import JobEvent
from storyloom.jobs.local import LocalWorker
from storyloom.jobs.watcher import JobWatcher
from storyloom.storage import SqlDatabase
from storyloom.storage.unit_of_work import session_of
from storyloom.story import service
from storyloom.story.model import Actor, JobKind, JobStatus
from storyloom.story.service import Deps
from tests.job_rows import job_row
from tests.story.fakes import SentIds

ANN = Actor("w", "c", "t", "ann", "Ann")
Render = Callable[[JobInput, Callable[[], bool]], list[Path]]


class Events:
    def __init__(self) -> None:
        self.seen: list[JobEvent] = []

    async def __call__(self, event: JobEvent) -> None:
        if event.progress is None:
            self.seen.append(event)

    def of(self, job_id: int) -> list[JobStatus]:
        return [e.status for e in self.seen if e.job.id == job_id]


class ScriptedWorker(LocalWorker):
    """The real worker; its render step does what the test says, per job kind."""

    renders: dict[JobKind, Render]

    def _render(
        self, work: JobInput, should_cancel: Callable[[], bool], on_progress: object
    ) -> tuple[list[Path], list[SafetyAction]]:
        return self.renders[work.job.kind](work, should_cancel), []


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Lets renders that never stop on their own end when the test is over."""
    gate = threading.Event()
    yield gate
    gate.set()


def never_stops(gate: threading.Event) -> Render:
    """A render that ignores every request to stop (a stuck driver, an endless loop)."""

    def render(work: JobInput, should_cancel: Callable[[], bool]) -> list[Path]:
        gate.wait()
        return []

    return render


def worker(db: SqlDatabase, tmp_path: Path, seen: Events, **options: object) -> ScriptedWorker:
    made = ScriptedWorker(
        db, lambda: None, tmp_path / "out", seen, pick_next=head_of_line,  # type: ignore[arg-type, return-value]
        cancel_poll_seconds=0.05, **options,  # type: ignore[arg-type]
    )  # fmt: skip
    made.renders = {kind: lambda work, stop: [] for kind in JobKind}
    return made


async def story(db: SqlDatabase) -> Deps:
    deps = Deps(db, SentIds(), STYLE_NAMES, "comic")
    await service.new_story(deps, ANN, "Lighthouse")
    await service.cast_character(deps, ANN, "Mira", "a girl with red hair")
    await service.add_beat(deps, ANN, "[Mira] walks on a beach")
    return deps


async def test_a_render_raising_stop_iteration_fails_alone_and_the_worker_goes_on(
    db: SqlDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Events()
    deps = await story(db)
    poison, next_job = await service.render(deps, ANN), await service.clip(deps, ANN, 1, 1)
    busy = worker(db, tmp_path, seen)
    busy.renders[JobKind.PAGE] = lambda work, stop: next(iter([]))  # what a lookup did
    await asyncio.wait_for(busy.process(poison.id), 30)
    await asyncio.wait_for(busy.process(next_job.id), 30)
    failed = await job_row(db, poison.id)
    # members read a sentence with a reference; the StopIteration is in the log under it
    said = re.fullmatch(r"the render failed on our side \(ref (\w{8})\); .*", failed.error or "")
    assert failed.status == JobStatus.FAILED and said is not None, failed.error
    [logged] = [r for r in caplog.records if f"ref {said[1]}" in r.getMessage()]
    assert "StopIteration" in (logged.exc_text or str(logged.exc_info))
    assert (await job_row(db, next_job.id)).status == JobStatus.DONE


async def test_a_sheet_whose_character_is_gone_fails_with_why_and_the_message_starts_the_next(
    db: SqlDatabase, tmp_path: Path
) -> None:
    seen = Events()
    deps = await story(db)
    sheet = (await service.lock_look(deps, ANN, "Mira")).job
    assert sheet is not None
    page = await service.render(deps, ANN)
    async with db.writing() as uow:
        await session_of(uow).execute(text("DELETE FROM characters"))
    await asyncio.wait_for(worker(db, tmp_path, seen).process(sheet.id), 30)
    failed = await job_row(db, sheet.id)
    assert failed.status == JobStatus.FAILED
    assert failed.error == "its character was removed from the story"
    assert seen.of(sheet.id) == [JobStatus.FAILED]
    # the one message was not spent on the poison job: the page behind it ran
    assert seen.of(page.id) == [JobStatus.RUNNING, JobStatus.DONE]


async def test_a_render_past_its_time_limit_is_stopped_and_failed(
    db: SqlDatabase, tmp_path: Path
) -> None:
    seen = Events()
    job = await service.render(await story(db), ANN)
    slow = worker(db, tmp_path, seen, time_limit_s=0.3)

    def steps_until_told(work: JobInput, should_cancel: Callable[[], bool]) -> list[Path]:
        while not should_cancel():
            time.sleep(0.01)
        raise RenderCancelled()

    slow.renders[JobKind.PAGE] = steps_until_told
    await asyncio.wait_for(slow.process(job.id), 30)
    failed = await job_row(db, job.id)
    assert failed.status == JobStatus.FAILED and "time limit of 0 s" in (failed.error or "")


async def test_a_render_that_never_stops_is_abandoned_and_the_worker_takes_the_next_job(
    db: SqlDatabase, tmp_path: Path, release: threading.Event
) -> None:
    seen = Events()
    deps = await story(db)
    stuck, next_job = await service.render(deps, ANN), await service.clip(deps, ANN, 1, 1)
    gave_up: list[bool] = []
    busy = worker(
        db, tmp_path, seen, time_limit_s=0.2, abandon_after_s=0.3,
        on_abandoned=lambda: gave_up.append(True),
    )  # fmt: skip
    busy.renders[JobKind.PAGE] = never_stops(release)
    await asyncio.wait_for(busy.process(stuck.id), 30)
    await asyncio.wait_for(busy.process(next_job.id), 30)
    assert (await job_row(db, stuck.id)).status == JobStatus.FAILED
    assert gave_up == [True]
    assert (await job_row(db, next_job.id)).status == JobStatus.DONE


async def test_a_cancel_frees_the_worker_even_from_a_render_that_never_stops(
    db: SqlDatabase, tmp_path: Path, release: threading.Event
) -> None:
    seen = Events()
    deps = await story(db)
    job = await service.render(deps, ANN)
    busy = worker(db, tmp_path, seen, abandon_after_s=0.3)
    busy.renders[JobKind.PAGE] = never_stops(release)
    running = asyncio.create_task(busy.process(job.id))
    while (await job_row(db, job.id)).status != JobStatus.RUNNING:
        await asyncio.sleep(0.02)
    await service.cancel(deps, ANN, job.id)
    await asyncio.wait_for(running, 30)
    assert seen.of(job.id) == [JobStatus.RUNNING, JobStatus.CANCELLED]


async def test_a_job_of_a_kind_from_a_newer_version_is_failed_reported_and_cancellable(
    db: SqlDatabase, tmp_path: Path
) -> None:
    seen = Events()
    deps = await story(db)
    newer, other = await service.render(deps, ANN), await service.render(deps, ANN)
    async with db.writing() as uow:
        await session_of(uow).execute(
            text("UPDATE render_jobs SET kind = 'storyboard' WHERE id IN (:a, :b)"),
            {"a": newer.id, "b": other.id},
        )
    reported = Events()
    watcher = JobWatcher(
        db, Delivery(db, as_courier(reported), tmp_path), lambda: asyncio.sleep(0, {})
    )
    await watcher.poll()  # reads it: no error, it waits like any job
    assert reported.of(newer.id) == [JobStatus.QUEUED]
    cancelled = await service.cancel(deps, ANN, other.id)
    assert cancelled.kind == JobKind.UNKNOWN and cancelled.status == JobStatus.CANCELLED

    await asyncio.wait_for(worker(db, tmp_path, seen).process(newer.id), 30)
    failed = await job_row(db, newer.id)
    assert failed.status == JobStatus.FAILED
    assert failed.error == "this version of storyloom cannot render this kind of job"
    await watcher.poll()
    assert reported.of(newer.id)[-1] == JobStatus.FAILED


async def test_a_job_with_a_status_from_a_newer_version_is_failed_not_a_stop_of_the_world(
    db: SqlDatabase, tmp_path: Path
) -> None:
    deps = await story(db)
    odd, fine = await service.render(deps, ANN), await service.render(deps, ANN)
    async with db.writing() as uow:
        await session_of(uow).execute(
            text("UPDATE render_jobs SET status = 'paused' WHERE id = :a"), {"a": odd.id}
        )
    reported = Events()
    watcher = JobWatcher(
        db, Delivery(db, as_courier(reported), tmp_path), lambda: asyncio.sleep(0, {})
    )
    await watcher.poll()
    assert reported.of(fine.id) == [JobStatus.QUEUED]  # the others are watched as ever
    failed = await job_row(db, odd.id)
    assert failed.status == JobStatus.FAILED and "'paused' is unknown" in (failed.error or "")
    await watcher.poll()
    assert reported.of(odd.id) == [JobStatus.FAILED]
