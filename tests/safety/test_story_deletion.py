"""Deleting a story removes its rows, its result files and its cast's identity stores, and
clears the personal text of its audit entries (their ids stay). SQLite, the real worker."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from storyloom.generation.renderer import StoryRenderer
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.forget import forgetter
from storyloom.jobs.local import LocalWorker
from storyloom.storage import SqlDatabase
from storyloom.story import server_admin, service
from storyloom.story.model import Actor
from storyloom.story.service import Deps
from tests.story.fakes import SentIds

ANN = Actor("g1", "c", "t", "ann", "Ann")
MOD = Actor("g1", "c", "t", "mod", "Mo", is_moderator=True)


async def _nothing(event: object) -> None:
    return None


async def test_deleting_a_story_removes_its_files_stores_and_audit_text(
    db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    worker = LocalWorker(db, lambda: renderer, out, _nothing, detector=lambda: lambda image: [])
    deps = Deps(db, SentIds(), STYLE_NAMES, "comic")
    deps = dataclasses.replace(deps, forget_files=forgetter(out, lambda: worker.loaded_renderer))
    await service.new_story(deps, ANN, "Lighthouse keeper")
    await service.cast_character(deps, ANN, "Mira", "a girl with red hair")
    await service.add_beat(deps, ANN, "[Mira] climbs the lighthouse stairs")
    sheet = (await service.lock_look(deps, ANN, "Mira")).job
    assert sheet is not None
    await worker.process(sheet.id)
    page = await service.render(deps, ANN)
    await worker.process(page.id)
    assert renderer.store_dir is not None
    stores = set(renderer.store_dir.glob("*.safetensors"))
    assert (out / f"job-{page.id}").is_dir() and stores

    other = dataclasses.replace(ANN, thread_id="t2")  # another story keeps its files
    await service.new_story(deps, other, "Harbour")
    await service.add_beat(deps, other, "boats at dawn")
    kept = await service.render(deps, other)
    await worker.process(kept.id)

    await service.delete_story(deps, MOD)
    assert not (out / f"job-{sheet.id}").exists() and not (out / f"job-{page.id}").exists()
    assert (out / f"job-{kept.id}").is_dir()
    assert not any(path.exists() for path in stores)
    entries = await server_admin.audit_log(deps, MOD, 100)
    mine = [e for e in entries if e.story_id == page.story_id]
    assert mine and all(e.detail is None for e in mine)
    assert {e.job_id for e in mine} >= {sheet.id, page.id}  # ids stay
    assert not any("lighthouse" in e.describe().casefold() for e in entries)
    assert any("boats at dawn" in e.describe() for e in entries)
