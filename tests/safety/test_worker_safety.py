"""Every panel and sheet a job draws passes the image check before any file is written;
what the check did goes to the server's audit trail. SQLite, the tiny model, the real
worker; the detector is the real one, or the seam that flags everything."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from storyloom.generation.renderer import StoryRenderer
from storyloom.generation.safety import Detector, placeholder, shared_detector
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.local import JobEvent, LocalWorker
from storyloom.storage import SqlDatabase
from storyloom.story import server_admin, service
from storyloom.story.audit import AuditAction
from storyloom.story.model import Actor, JobStatus
from storyloom.story.service import Deps
from tests.story.fakes import SentIds

from .test_image_check import FlagsEverything

ANN = Actor("g1", "c", "t", "ann", "Ann")
MOD = Actor("g1", "c", "t", "mod", "Mo", is_moderator=True)


class Seen:
    def __init__(self) -> None:
        self.done: dict[int, JobEvent] = {}

    async def __call__(self, event: JobEvent) -> None:
        if not event.status.active:
            self.done[event.job.id] = event


async def _setup(
    db: SqlDatabase, renderer: StoryRenderer, out: Path, detector: Detector
) -> tuple[Deps, LocalWorker, Seen]:
    seen = Seen()
    worker = LocalWorker(db, lambda: renderer, out, seen, detector=lambda: detector)
    deps = Deps(db, SentIds(), STYLE_NAMES, "comic")
    await service.new_story(deps, ANN, "Lighthouse")
    await service.add_beat(deps, ANN, "a lighthouse at night # The light was out.")
    await service.add_beat(deps, ANN, "waves on the rocks")
    return deps, worker, seen


def _same(a: Image.Image, b: Image.Image) -> bool:
    return np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))


async def _actions(deps: Deps) -> list[AuditAction]:
    return [e.action for e in await server_admin.audit_log(deps, MOD, 100)]


async def test_a_flagged_panel_is_replaced_by_the_placeholder_and_audited(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    deps, worker, seen = await _setup(db, renderer, tmp_path, FlagsEverything())
    job = await service.reroll_panel(deps, ANN, 2)
    assert job.safety == "block"  # the default level
    await worker.process(job.id)
    [path] = seen.done[job.id].files
    with Image.open(path) as drawn:
        assert _same(drawn, placeholder(drawn.size))
    [entry] = [e for e in await server_admin.audit_log(deps, MOD) if e.job_id == job.id
               and e.action is AuditAction.PANEL_BLOCKED]  # fmt: skip
    assert (entry.target, entry.actor_id, entry.story_id) == ("panel 2", "ann", job.story_id)


async def test_a_page_with_flagged_panels_is_still_posted(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    deps, worker, seen = await _setup(db, renderer, tmp_path, FlagsEverything())
    job = await service.render(deps, ANN)
    await worker.process(job.id)
    assert seen.done[job.id].status is JobStatus.DONE
    assert seen.done[job.id].files[0].name == "story-page-01.png"
    assert (await _actions(deps)).count(AuditAction.PANEL_BLOCKED) == 2


async def test_a_servers_blur_level_blurs_and_sheets_are_checked_too(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    flags = FlagsEverything()
    deps, worker, seen = await _setup(db, renderer, tmp_path, flags)
    await server_admin.change_setting(deps, MOD, "safety", "blur")
    await service.cast_character(deps, ANN, "Mira", "a girl with red hair")
    job = await service.lock_look(deps, ANN, "Mira")
    assert job.job is not None and job.job.safety == "blur"
    await worker.process(job.job.id)
    files = seen.done[job.job.id].files
    # every identity image is checked, then they are labelled into one sheet picture
    assert flags.seen == renderer.settings.identity_images and len(files) == 1
    with Image.open(files[0]) as sheet:
        assert not _same(sheet, placeholder(sheet.size))
    assert AuditAction.PANEL_BLURRED in await _actions(deps)


async def test_off_holds_only_in_an_age_restricted_channel(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    deps, worker, seen = await _setup(db, renderer, tmp_path, FlagsEverything())
    await server_admin.change_setting(deps, MOD, "safety", "off")
    elsewhere = await service.reroll_panel(deps, ANN, 1)
    assert elsewhere.safety == "block"
    adult = dataclasses.replace(ANN, age_restricted=True)
    allowed = await service.reroll_panel(deps, adult, 1)
    assert allowed.safety == "off"
    await worker.process(allowed.id)
    [path] = seen.done[allowed.id].files
    with Image.open(path) as drawn:
        assert not _same(drawn, placeholder(drawn.size))
    assert AuditAction.PANEL_ALLOWED in await _actions(deps)


async def test_the_real_detector_passes_ordinary_rendered_panels(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    deps, worker, seen = await _setup(db, renderer, tmp_path, shared_detector())
    job = await service.render(deps, ANN)
    await worker.process(job.id)
    assert seen.done[job.id].status is JobStatus.DONE
    flagged = {AuditAction.PANEL_BLOCKED, AuditAction.PANEL_BLURRED}
    assert not flagged & set(await _actions(deps))


async def test_a_detector_that_cannot_load_fails_the_job_instead_of_posting(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deps, worker, seen = await _setup(db, renderer, tmp_path, FlagsEverything())

    def missing() -> Detector:
        raise RuntimeError("the image safety check needs the 'safety' extra")

    worker.detector = missing
    job = await service.render(deps, ANN)
    await worker.process(job.id)
    event = seen.done[job.id]
    assert event.status is JobStatus.FAILED and event.files == ()
    # members read a sentence with a reference; the operator's log says what is missing
    ref = (event.error or "").split("(ref ")[1].split(")")[0]
    [logged] = [r for r in caplog.records if f"ref {ref}" in r.getMessage()]
    assert "'safety' extra" in (logged.exc_text or str(logged.exc_info))
