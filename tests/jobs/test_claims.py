"""Two workers reading the same head of the line (PostgreSQL lets both read it): the one
that loses the claim starts the next waiting job instead of dropping its message.

The race is staged with the core's hand-written fake database, whose claim lets "another
worker" win once; the render is real (tiny model)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from storyloom.generation.models import load_pipeline
from storyloom.generation.renderer import RenderSettings, StoryRenderer
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.local import JobEvent, LocalWorker
from storyloom.story import service
from storyloom.story.model import Actor, JobStatus, RenderJob
from storyloom.story.ports import UnitOfWork
from storyloom.story.service import Deps
from tests.story.fakes import FakeDatabase, FakeJobs, FakeUnitOfWork, SentIds, State

ANN = Actor("w", "c", "t", "ann", "Ann")


class RacedJobs(FakeJobs):
    """The first claim loses: another worker started the job between our read and write."""

    def __init__(self, state: State, race: list[int]) -> None:
        super().__init__(state)
        self.race = race

    async def claim(self, job_id: int, seen: RenderJob, updated_at: datetime) -> bool:
        if not self.race:
            self.race.append(job_id)
            job = self.s.jobs[job_id]
            self.s.jobs[job_id] = replace(job, status=JobStatus.RUNNING, attempts=1)
            return False
        return await super().claim(job_id, seen, updated_at)


class RacedDatabase(FakeDatabase):
    def __init__(self) -> None:
        super().__init__()
        self.race: list[int] = []

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[FakeUnitOfWork]:
        async with super().writing() as uow:
            uow.jobs = RacedJobs(uow.jobs.s, self.race)
            yield uow


async def oldest_waiting(uow: UnitOfWork, now: datetime) -> int | None:
    """A fair line of one workspace: the oldest queued job."""
    assert isinstance(uow.jobs, FakeJobs)
    waiting = [j.id for j in uow.jobs.s.jobs.values() if j.status == JobStatus.QUEUED]
    return min(waiting, default=None)


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> StoryRenderer:
    loaded = load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))
    small = RenderSettings(width=64, height=64, steps=2)
    return StoryRenderer(loaded, small, tmp_path_factory.mktemp("stores"))


async def test_a_worker_that_loses_the_claim_starts_the_next_waiting_job(
    renderer: StoryRenderer, tmp_path: Path
) -> None:
    db = RacedDatabase()
    deps = Deps(db, SentIds(), STYLE_NAMES, "comic")
    await service.new_story(deps, ANN, "Harbour")
    await service.add_beat(deps, ANN, "boats at dawn")
    first, second = await service.render(deps, ANN), await service.render(deps, ANN)
    events: list[JobEvent] = []

    async def notify(event: JobEvent) -> None:
        if event.progress is None:  # status changes only
            events.append(event)

    worker = LocalWorker(
        db, lambda: renderer, tmp_path / "out", notify, pick_next=oldest_waiting
    )  # fmt: skip
    await worker.process(second.id)  # the message of job 2 wakes the worker

    assert db.race == [first.id]  # it read job 1 at the head and lost it to the other worker
    assert db.state.jobs[second.id].status == JobStatus.DONE
    assert [(e.job.id, e.status) for e in events] == [
        (second.id, JobStatus.RUNNING),
        (second.id, JobStatus.DONE),
    ]


async def test_without_a_fair_line_a_lost_claim_leaves_the_job_to_its_winner(
    renderer: StoryRenderer, tmp_path: Path
) -> None:
    db = RacedDatabase()
    deps = Deps(db, SentIds(), STYLE_NAMES, "comic")
    await service.new_story(deps, ANN, "Harbour")
    await service.add_beat(deps, ANN, "boats at dawn")
    job = await service.render(deps, ANN)

    async def notify(event: JobEvent) -> None:
        raise AssertionError(f"nothing should start here: {event}")

    await LocalWorker(db, lambda: renderer, tmp_path / "out", notify).process(job.id)
    assert db.race == [job.id]
    assert db.state.jobs[job.id].status == JobStatus.RUNNING  # the winner's
