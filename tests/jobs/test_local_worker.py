"""The in-process worker end to end: service → job row → worker → files → notifier, on SQLite."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import pytest
from PIL import Image

from storyloom.generation.models import load_pipeline
from storyloom.generation.renderer import RenderSettings, StoryRenderer
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.broker import TaskiqQueue, bind_worker, memory_broker
from storyloom.jobs.local import JobEvent, LocalWorker
from storyloom.storage import SqlDatabase
from storyloom.story import service
from storyloom.story.model import Actor, JobStatus, LockState
from storyloom.story.service import Deps
from tests.story.fakes import SentIds

ANN = Actor("w", "c", "t", "ann", "Ann")
SMALL = RenderSettings(width=64, height=64, steps=2)


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> StoryRenderer:
    loaded = load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))
    return StoryRenderer(loaded, SMALL, tmp_path_factory.mktemp("stores"))


class Recorder:
    def __init__(self) -> None:
        self.events: list[JobEvent] = []

    async def __call__(self, event: JobEvent) -> None:
        self.events.append(event)

    def statuses(self, job_id: int) -> list[JobStatus]:
        """Status changes only (progress reports repeat RUNNING)."""
        return [e.status for e in self.events if e.job.id == job_id and e.progress is None]


def setup(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> tuple[Deps, LocalWorker, Recorder]:
    seen = Recorder()
    worker = LocalWorker(db, lambda: renderer, tmp_path / "out", seen, cancel_poll_seconds=0.0)
    return Deps(db, SentIds(), STYLE_NAMES, "comic"), worker, seen


async def story_with_beats(deps: Deps) -> None:
    await service.new_story(deps, ANN, "Lighthouse")
    await service.cast_character(deps, ANN, "Mira", "a girl with red hair")
    await service.add_beat(deps, ANN, '[Mira] walks on a beach # Mira: "Hello!"')
    await service.add_beat(deps, ANN, "[mira] climbs the stairs # The light was out.")
    await service.add_beat(deps, ANN, "# Night fell.")  # a caption-only beat still gets a panel


async def test_a_page_job_goes_through_the_worker_to_files_and_the_notifier(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    deps, worker, seen = setup(db, renderer, tmp_path)
    await story_with_beats(deps)
    job = await service.render(deps, ANN)
    await worker.process(job.id)
    assert seen.statuses(job.id) == [JobStatus.RUNNING, JobStatus.DONE]
    files = seen.events[-1].files
    assert [f.name for f in files] == ["story-page-01.png", "story.pdf", "story.zip"]
    assert all(f.is_file() and f.parent == tmp_path / "out" / f"job-{job.id}" for f in files)
    overview = await service.status(deps, ANN)
    assert overview.jobs[0].status == JobStatus.DONE


async def test_a_range_renders_only_its_beats_and_a_clip_fits_the_budget(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    deps, worker, seen = setup(db, renderer, tmp_path)
    await story_with_beats(deps)
    job = await service.clip(deps, ANN, 2, 3)
    await worker.process(job.id)
    [clip] = seen.events[-1].files
    assert clip.suffix == ".mp4" and 0 < clip.stat().st_size <= worker.clip_budget_bytes


async def test_a_sheet_job_makes_the_look_ready_to_lock(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    deps, worker, seen = setup(db, renderer, tmp_path)
    await story_with_beats(deps)
    result = await service.lock_look(deps, ANN, "Mira")
    assert result.job is not None
    await worker.process(result.job.id)
    # one labelled sheet, named for the character, with every identity image on it
    [sheet] = seen.events[-1].files
    assert sheet.name == "mira-sheet.png"
    with Image.open(sheet) as image:
        assert image.width == renderer.settings.identity_images * renderer.settings.width
    [mira] = (await service.status(deps, ANN)).characters
    assert mira.lock_state == LockState.SHEET_RENDERED
    locked = await service.lock_look(deps, ANN, "Mira")
    assert locked.character.lock_state == LockState.LOCKED and locked.job is None


async def test_a_job_cancelled_while_queued_never_starts(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    deps, worker, seen = setup(db, renderer, tmp_path)
    await story_with_beats(deps)
    job = await service.render(deps, ANN)
    await service.cancel(deps, ANN, job.id)
    await worker.process(job.id)
    assert seen.events == []
    assert not (tmp_path / "out" / f"job-{job.id}").exists()


async def test_a_running_job_stops_at_its_next_step_when_cancelled(
    db: SqlDatabase, tmp_path: Path, renderer: StoryRenderer
) -> None:
    slow = StoryRenderer(renderer.loaded, dataclasses.replace(SMALL, steps=40), tmp_path / "s")
    seen = Recorder()
    deps_box: list[Deps] = []

    async def cancel_when_running(event: JobEvent) -> None:
        await seen(event)
        if event.status == JobStatus.RUNNING:
            await service.cancel(deps_box[0], ANN, event.job.id)

    worker = LocalWorker(
        db, lambda: slow, tmp_path / "out", cancel_when_running, cancel_poll_seconds=0.0
    )
    deps = Deps(db, SentIds(), STYLE_NAMES, "comic")
    deps_box.append(deps)
    await story_with_beats(deps)
    job = await service.render(deps, ANN)
    await worker.process(job.id)
    assert seen.statuses(job.id) == [JobStatus.RUNNING, JobStatus.CANCELLED]
    assert (await service.status(deps, ANN)).jobs[0].status == JobStatus.CANCELLED
    # it stopped mid-render: the page was never drawn
    assert not (tmp_path / "out" / f"job-{job.id}" / "story-page-01.png").exists()


async def test_a_failing_render_marks_the_job_failed_and_the_worker_goes_on(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> StoryRenderer:
        raise RuntimeError("GPU on fire")

    seen = Recorder()
    worker = LocalWorker(db, broken, tmp_path / "out", seen)
    broker = memory_broker()  # as the embedded runtime delivers jobs
    bind_worker(broker, worker)
    deps = Deps(db, TaskiqQueue(broker), STYLE_NAMES, "comic")
    await story_with_beats(deps)
    first = await service.render(deps, ANN)
    await asyncio.wait_for(broker.wait_all(), 60)
    worker.load_renderer = lambda: renderer
    second = await service.render(deps, ANN)
    await asyncio.wait_for(broker.wait_all(), 60)
    assert seen.statuses(first.id)[-1] == JobStatus.FAILED
    # members read a sentence with a reference; the exception is in the log under it
    said = re.fullmatch(
        r"the render failed on our side \(ref (\w{8})\); .*", seen.events[1].error or ""
    )
    assert said is not None, seen.events[1].error
    [logged] = [r for r in caplog.records if f"ref {said[1]}" in r.getMessage()]
    assert "GPU on fire" in (logged.exc_text or str(logged.exc_info))
    assert seen.statuses(second.id)[-1] == JobStatus.DONE
