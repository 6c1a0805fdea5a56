"""Budgets in the embedded runtime: a posted result's files are deleted once posted when
nothing is to be kept, and a job over the caps (queued before the operator lowered them)
fails before the renderer is even loaded."""

from __future__ import annotations

import asyncio
from pathlib import Path

from storyloom.config import load_settings
from storyloom.generation.renderer import StoryRenderer
from storyloom.jobs.runtime import job_runtime
from storyloom.storage import SqlDatabase
from storyloom.story import service
from storyloom.story.model import JobStatus
from tests.jobs.test_runtime import (  # noqa: F401 - fixtures
    ANN,
    Loaders,
    Recorder,
    deps_of,
    loaded,
    renderer_with,
    story,
)


async def gone(path: Path) -> None:
    while path.exists():
        await asyncio.sleep(0.05)


async def test_with_keep_for_zero_a_posted_result_leaves_no_files(
    db: SqlDatabase,
    tmp_path: Path,
    renderer_with: Loaders,  # noqa: F811
) -> None:
    settings = load_settings(output_dir=tmp_path / "out", queue="embedded", keep_outputs_hours=0)
    seen = Recorder()
    async with job_runtime(
        settings, db, seen, load_renderer=renderer_with(2), watch_every_s=0.05
    ) as jobs:
        deps = deps_of(db, jobs)
        await story(deps)
        job = await service.render(deps, ANN, 1, 1)
        done = await seen.until_final(job.id)
        folder = tmp_path / "out" / f"job-{job.id}"
        # the report deletes the folder right after the notifier returned
        await asyncio.wait_for(gone(folder), timeout=30)
    assert done.status == JobStatus.DONE and done.files  # posted with its files


async def test_a_job_over_a_lowered_cap_fails_before_any_rendering(
    db: SqlDatabase, tmp_path: Path
) -> None:
    loads: list[int] = []

    def no_renderer() -> StoryRenderer:
        loads.append(1)
        raise AssertionError("the renderer must not be needed")

    settings = load_settings(output_dir=tmp_path / "out", queue="embedded", max_panels_per_job=1)
    seen = Recorder()
    async with job_runtime(
        settings, db, seen, load_renderer=no_renderer, watch_every_s=0.05
    ) as jobs:
        deps = deps_of(db, jobs)  # the old caps: two panels were allowed when it was asked
        await story(deps)
        job = await service.render(deps, ANN)
        failed = await seen.until_final(job.id)
        await jobs.drain()
    assert failed.status == JobStatus.FAILED
    assert "at most 1 panels" in (failed.error or "")
    assert loads == []
