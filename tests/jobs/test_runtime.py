"""A chat side's jobs in the embedded mode, end to end on SQLite: service → job row →
in-memory broker → worker → files → watcher → notifier. Outcomes are reported exactly once,
also across restarts, and a stopping process hands its render in hand back to the line."""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from storyloom.config import Settings, load_settings
from storyloom.generation.models import LoadedModel, load_pipeline
from storyloom.generation.renderer import RenderSettings, StoryRenderer
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs import runtime as runtime_module
from storyloom.jobs.admission import store_progress
from storyloom.jobs.events import JobEvent
from storyloom.jobs.progress import JobProgress
from storyloom.jobs.runtime import JobRuntime, job_runtime
from storyloom.storage import SqlDatabase
from storyloom.story import service
from storyloom.story.model import Actor, JobKind, JobStatus
from storyloom.story.service import Deps, utc_now
from tests.job_rows import job_row, owed_state
from tests.story.fakes import SentIds

ANN = Actor("w", "c", "t", "ann", "Ann")
Loaders = Callable[[int], Callable[[], StoryRenderer]]
Start = Callable[..., AbstractAsyncContextManager[JobRuntime]]
FINAL = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))


@pytest.fixture
def renderer_with(
    loaded: LoadedModel, tmp_path: Path
) -> Callable[[int], Callable[[], StoryRenderer]]:
    """A renderer loader for the runtime, with this many denoising steps."""

    def steps(count: int) -> Callable[[], StoryRenderer]:
        small = RenderSettings(width=64, height=64, steps=count)
        return lambda: StoryRenderer(loaded, small, tmp_path / "stores")

    return steps


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(output_dir=tmp_path / "out", queue="embedded")


@pytest.fixture
def start(db: SqlDatabase, settings: Settings, renderer_with: Loaders) -> Start:
    """A bot process's jobs side: `start(notify, steps=2, **options)`."""

    def runtime(notify: Recorder, steps: int = 2, **options: Any) -> Any:
        options.setdefault("watch_every_s", 0.05)
        return job_runtime(settings, db, notify, load_renderer=renderer_with(steps), **options)

    return runtime


class Recorder:
    """A notifier that keeps every event; `fail_final` makes the first N outcomes fail."""

    def __init__(self, fail_final: int = 0) -> None:
        self.events: list[JobEvent] = []
        self.fail_final = fail_final
        self.changed = asyncio.Event()

    async def __call__(self, event: JobEvent) -> None:
        if event.status in FINAL and self.fail_final > 0:
            self.fail_final -= 1
            raise ConnectionError("the chat platform is down")
        self.events.append(event)
        self.changed.set()

    def finals(self, job_id: int) -> list[JobEvent]:
        return [e for e in self.events if e.job.id == job_id and e.status in FINAL]

    async def until_final(self, job_id: int, timeout: float = 60) -> JobEvent:
        async def wait() -> JobEvent:
            while not self.finals(job_id):
                self.changed.clear()
                await self.changed.wait()
            return self.finals(job_id)[0]

        return await asyncio.wait_for(wait(), timeout)


async def story(deps: Deps) -> None:
    await service.new_story(deps, ANN, "Lighthouse")
    await service.cast_character(deps, ANN, "Mira", "a girl with red hair")
    await service.add_beat(deps, ANN, '[Mira] walks on a beach # Mira: "Hello!"')
    await service.add_beat(deps, ANN, "[mira] climbs the stairs # The light was out.")


def deps_of(db: SqlDatabase, jobs: JobRuntime) -> Deps:
    return Deps(db, jobs.queue, STYLE_NAMES, "comic")


async def test_a_page_goes_from_the_service_to_the_notifier_with_its_files_once(
    db: SqlDatabase, start: Start, tmp_path: Path
) -> None:
    seen = Recorder()
    async with start(seen) as jobs:
        deps = deps_of(db, jobs)
        await story(deps)
        job = await service.render(deps, ANN)
        done = await seen.until_final(job.id)
        await jobs.drain()
    assert done.status == JobStatus.DONE and done.job.posted
    names = ["story-page-01.png", "story.pdf", "story.zip"]
    assert [f.name for f in done.files] == names
    assert all(f.is_file() and f.parent == tmp_path / "out" / f"job-{job.id}" for f in done.files)
    statuses = [e.status for e in seen.events if e.job.id == job.id and e.progress is None]
    assert statuses[-2:] == [JobStatus.RUNNING, JobStatus.DONE]
    assert len(seen.finals(job.id)) == 1
    stored = await job_row(db, job.id)
    assert stored.posted and stored.result_files == tuple(names)


async def test_outcomes_from_while_the_bot_was_down_are_reported_at_start_once(
    db: SqlDatabase, start: Start
) -> None:
    offline = Deps(db, SentIds(), STYLE_NAMES, "comic")
    await story(offline)
    cancelled = await service.render(offline, ANN)
    await service.cancel(offline, ANN, cancelled.id)  # never reached a worker
    waiting = await service.render(offline, ANN)  # queued, its message lost with the process

    first = Recorder()
    async with start(first):
        assert (await first.until_final(cancelled.id)).status == JobStatus.CANCELLED
        assert (await first.until_final(waiting.id)).status == JobStatus.DONE
    second = Recorder()
    async with start(second) as jobs:
        await jobs.watcher.poll()
    assert [len(first.finals(j.id)) for j in (cancelled, waiting)] == [1, 1]
    assert second.finals(cancelled.id) == second.finals(waiting.id) == []


async def test_a_failed_report_is_retried_and_then_made_once(db: SqlDatabase, start: Start) -> None:
    seen = Recorder(fail_final=1)
    async with start(seen) as jobs:
        deps = deps_of(db, jobs)
        await story(deps)
        job = await service.render(deps, ANN)
        done = await seen.until_final(job.id)
        for _ in range(5):
            await jobs.watcher.poll()
    assert done.status == JobStatus.DONE and seen.fail_final == 0
    assert len(seen.finals(job.id)) == 1


async def test_jobs_of_workspaces_it_does_not_own_are_left_to_their_own_bot(
    db: SqlDatabase, start: Start
) -> None:
    offline = Deps(db, SentIds(), STYLE_NAMES, "comic")
    await story(offline)
    job = await service.render(offline, ANN)
    await service.cancel(offline, ANN, job.id)
    seen = Recorder()
    not_w = lambda workspace_id: workspace_id != "w"  # noqa: E731
    async with start(seen, owns=not_w) as jobs:
        await jobs.watcher.poll()
    assert seen.events == []
    assert not (await job_row(db, job.id)).posted


async def test_a_stopping_bot_hands_its_render_back_and_the_next_start_finishes_it(
    db: SqlDatabase, start: Start
) -> None:
    seen = Recorder()
    async with start(seen, steps=200) as jobs:
        deps = deps_of(db, jobs)
        await story(deps)
        job = await service.render(deps, ANN)
        while (await job_row(db, job.id)).status != JobStatus.RUNNING:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # in the middle of the render
    handed_back = await job_row(db, job.id)
    assert (handed_back.status, handed_back.attempts) == (JobStatus.QUEUED, 0)
    assert seen.finals(job.id) == []

    after = Recorder()
    async with start(after):
        done = await after.until_final(job.id)
    assert done.status == JobStatus.DONE and done.job.attempts == 1


@pytest.mark.parametrize("process_ends", [True, False])
async def test_a_stop_waits_for_a_model_load_unless_the_process_ends_next(
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    process_ends: bool,
) -> None:
    loading, release = threading.Event(), threading.Event()
    real = runtime_module._local_worker

    def slow_load(*args: Any) -> Any:  # a model load that takes minutes
        loading.set()
        release.wait(60)
        return real(*args)

    monkeypatch.setattr(runtime_module, "_local_worker", slow_load)
    caplog.set_level(logging.INFO, logger="storyloom.jobs.runtime")

    async def start_and_stop() -> None:
        async with start(Recorder(), leave_load_on_stop=lambda: process_ends) as jobs:
            assert await asyncio.to_thread(loading.wait, 10)
            assert jobs.worker is None

    stop = asyncio.create_task(start_and_stop())
    try:
        if process_ends:
            # a container's stop timeout is 10 s: a stop by signal does not wait for the load,
            # which goes on, on a daemon thread, until the process ends
            await asyncio.wait_for(stop, 10)
            assert "the renderer is still loading" in caplog.text
            (thread,) = [t for t in threading.enumerate() if t.name == runtime_module.LOAD_THREAD]
            assert thread.daemon
        else:  # the process goes on (a restart, a test): no second load beside this one
            await asyncio.to_thread(loading.wait, 10)
            await asyncio.sleep(0.5)
            assert not stop.done()
            release.set()
            await asyncio.wait_for(stop, 10)
    finally:
        release.set()
        if not stop.done():
            stop.cancel()


LEFT_LOAD = """
import logging, sys, threading
from storyloom.jobs.runtime import LOAD_THREAD, end_process_if_load_left
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
end_process_if_load_left(3)  # nothing left: it returns
threading.Thread(target=threading.Event().wait, name=LOAD_THREAD, daemon=True).start()
logging.getLogger("x").info("bot stopped")
end_process_if_load_left(3)
sys.exit(0)
"""


def test_a_process_that_left_a_load_behind_ends_at_once_with_its_logs_written() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LEFT_LOAD], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (3, "bot stopped\n"), done.stderr[-2000:]


async def test_the_watcher_reports_progress_read_from_the_row(
    db: SqlDatabase, start: Start
) -> None:
    offline = Deps(db, SentIds(), STYLE_NAMES, "comic")
    await story(offline)
    job = await service.render(offline, ANN)
    async with db.writing() as uow:
        assert await uow.jobs.claim(job.id, job, job.created_at)
    seen = Recorder()
    async with start(seen, watch_every_s=60) as jobs:
        await jobs.watcher.poll()
        report = JobProgress(done=3, total=8, panel=1, panels=2, eta_s=4.5)
        async with db.writing() as uow:
            await store_progress(uow, job.id, report)
        await jobs.watcher.poll()
        await jobs.watcher.poll()  # nothing new: no event
    mine = [e for e in seen.events if e.job.id == job.id]
    assert [(e.status, e.progress) for e in mine] == [
        (JobStatus.RUNNING, None),
        (JobStatus.RUNNING, JobProgress(3, 8, 1, 2, 4.5)),
    ]


async def test_a_rerolled_panel_is_new_and_later_pages_keep_it(
    db: SqlDatabase, start: Start
) -> None:
    seen = Recorder()
    async with start(seen) as jobs:
        deps = deps_of(db, jobs)
        await story(deps)
        before = await seen.until_final((await service.render(deps, ANN)).id)
        reroll = await service.reroll_panel(deps, ANN, 2)
        panel = await seen.until_final(reroll.id)
        after = await seen.until_final((await service.render(deps, ANN)).id)
    assert reroll.kind == JobKind.PANEL
    assert [f.name for f in panel.files] == ["panel-2.png"]
    new = Image.open(panel.files[0]).convert("RGB")

    def panels_of(event: JobEvent) -> list[Image.Image]:
        with zipfile.ZipFile(event.files[-1]) as archive:
            names = sorted(n for n in archive.namelist() if n.startswith("panels/"))
            return [Image.open(io.BytesIO(archive.read(n))).convert("RGB") for n in names]

    def distance(a: Image.Image, b: Image.Image) -> float:
        return float(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean())

    old_panels, new_panels = panels_of(before), panels_of(after)
    assert distance(old_panels[0], new_panels[0]) == 0  # the other panel: the same batch
    rerolled, kept = distance(old_panels[1], new), distance(new_panels[1], new)
    # the later page denoises it in a batch of two, the re-roll alone: the same seed and
    # prompt, so the same picture up to the rounding of batched arithmetic
    assert rerolled > 20 * max(kept, 0.05)


async def test_a_report_cut_short_by_a_stop_is_made_at_the_next_start(
    db: SqlDatabase, start: Start
) -> None:
    entered = asyncio.Event()

    async def hangs(event: JobEvent) -> None:
        if event.status in FINAL:
            entered.set()
            await asyncio.Event().wait()  # the chat platform never answers

    async with start(hangs) as jobs:
        deps = deps_of(db, jobs)
        await story(deps)
        job = await service.render(deps, ANN)
        await asyncio.wait_for(entered.wait(), 60)
    # reported (owed in the outbox), not yet delivered: the next start delivers it
    assert (await job_row(db, job.id)).posted
    assert await owed_state(db, job.id) == "pending"

    after = Recorder()
    async with start(after):
        assert (await after.until_final(job.id)).status == JobStatus.DONE


async def test_a_job_left_running_by_a_crash_just_before_a_restart_is_finished(
    db: SqlDatabase, start: Start
) -> None:
    offline = Deps(db, SentIds(), STYLE_NAMES, "comic")
    await story(offline)
    job = await service.render(offline, ANN)
    async with db.writing() as uow:  # the crashed process had claimed it a moment ago
        assert await uow.jobs.claim(job.id, job, utc_now())
    seen = Recorder()
    # restarted at once: the heartbeat is still fresh at start, so only upkeep that goes on
    # running notices it lost its worker
    async with start(seen, heartbeat_lost_s=1.0, requeue_every_s=0.2):
        done = await seen.until_final(job.id)
    assert done.status == JobStatus.DONE and done.job.attempts == 2
