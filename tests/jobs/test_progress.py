"""Progress of a running job: throttled reports with panel, percent and time left, sent to
the notifier and written to the job row, and never after the result."""

from __future__ import annotations

from pathlib import Path

import pytest

from storyloom.generation.models import load_pipeline
from storyloom.generation.renderer import Progress, RenderSettings, StoryRenderer
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import store_progress
from storyloom.jobs.local import JobEvent, LocalWorker
from storyloom.jobs.progress import JobProgress, ProgressMeter
from storyloom.storage import SqlDatabase
from storyloom.storage.job_progress import read_progress
from storyloom.storage.job_watch import watched_jobs
from storyloom.storage.unit_of_work import SqlUnitOfWork
from storyloom.story import service
from storyloom.story.model import Actor, JobStatus
from storyloom.story.service import Deps
from tests.story.fakes import SentIds

ANN = Actor("w", "c", "t", "ann", "Ann")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reports_are_throttled_but_the_last_always_comes_with_a_measured_eta() -> None:
    clock, seen = Clock(), list[JobProgress]()
    meter = ProgressMeter(3, seen.append, first_panel=4, every_s=3.0, clock=clock)
    for done in range(1, 11):  # 10 steps, one a second, over beats 4..6
        meter(Progress("panels", (4 + (done - 1) * 3 // 10,), done, 10, done, 10))
        clock.now += 1.0
    assert [p.done for p in seen] == [1, 4, 7, 10]
    assert seen[0].eta_s is None  # one report: no pace yet
    assert seen[1].eta_s == pytest.approx(6.0)  # 3 steps in 3 s, 6 to go
    assert seen[-1].percent == 100 and seen[-1].eta_s == 0
    assert [p.panel for p in seen] == [1, 1, 2, 3]
    assert seen[1].describe() == "panel 1 of 3, 40%, about 6 s left"


def test_a_preview_comes_with_a_report_at_most_every_preview_every_s() -> None:
    clock, seen = Clock(), list[JobProgress]()
    drawn: list[object] = []

    def draw(latents: object) -> bytes:
        drawn.append(latents)
        return f"preview of {latents}".encode()

    meter = ProgressMeter(1, seen.append, every_s=1.0, clock=clock, make_preview=draw)
    meter.preview_every_s = 4.0
    for done in range(1, 11):  # 10 steps, one a second
        meter(Progress("panels", (1,), done, 10, done, 10, latents=f"step {done}"))
        clock.now += 1.0
    with_preview = [p.done for p in seen if p.preview is not None]
    assert with_preview == [1, 5, 9]  # never the last report: the result follows it
    assert drawn == ["step 1", "step 5", "step 9"]  # only the previews shown are drawn
    assert seen[4].preview == b"preview of step 5"


def test_previews_that_fail_stop_without_stopping_the_reports(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, seen = Clock(), list[JobProgress]()

    def broken(latents: object) -> bytes:
        raise ValueError("expected latents of shape [batch, 4, h, w]")

    meter = ProgressMeter(1, seen.append, every_s=0.0, clock=clock, make_preview=broken)
    for done in range(1, 4):
        meter(Progress("panels", (1,), done, 4, done, 4, latents="odd"))
        clock.now += 20.0
    assert [p.done for p in seen] == [1, 2, 3] and all(p.preview is None for p in seen)
    assert meter.make_preview is None and "progress previews stopped" in caplog.text


def test_a_sheet_reports_percent_without_panels() -> None:
    assert JobProgress(1, 4, 1, 0, None).describe() == "25%"


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> StoryRenderer:
    loaded = load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))
    return StoryRenderer(
        loaded, RenderSettings(width=64, height=64, steps=3), tmp_path_factory.mktemp("s")
    )


async def test_a_render_reports_progress_to_the_notifier_and_the_row_before_its_result(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    events: list[JobEvent] = []
    rows: list[tuple[int, str] | None] = []
    previews: list[bytes] = []

    async def notify(event: JobEvent) -> None:
        events.append(event)
        if event.progress is not None:  # what a chat side in another process would read
            async with db.reading() as uow:
                assert isinstance(uow, SqlUnitOfWork)
                rows.append(await read_progress(uow.session, event.job.id))
                [watched] = [w for w in await watched_jobs(uow.session) if w.job.id == event.job.id]
                if watched.preview is not None:
                    previews.append(watched.preview)

    worker = LocalWorker(
        db, lambda: renderer, tmp_path / "out", notify,
        progress_every_s=0.0, store_progress=store_progress,
    )  # fmt: skip
    deps = Deps(db, SentIds(), STYLE_NAMES, "comic")
    await service.new_story(deps, ANN, "Pier")
    for text in ("A pier at dusk", "Gulls over the water", "# The end."):
        await service.add_beat(deps, ANN, text)
    job = await service.render(deps, ANN, 2, 3)
    await worker.process(job.id)

    reports = [e.progress for e in events if e.progress is not None]
    assert reports, "no progress was reported"
    assert events[-1].status == JobStatus.DONE  # nothing edits the result back to running
    assert [r.done for r in reports] == sorted(r.done for r in reports)
    assert {r.panels for r in reports} == {2} and {r.panel for r in reports} <= {1, 2}
    # every report the notifier saw was already on the row
    assert all(row is not None for row in rows)
    assert [row[0] for row in rows if row] == [r.percent for r in reports]
    # the first report carries a preview of the latents (a JPEG), kept on the row too
    assert reports[0].preview is not None and reports[0].preview.startswith(b"\xff\xd8")
    assert previews and previews[0] == reports[0].preview
