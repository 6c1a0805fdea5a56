"""Finished stories for the reader tests: real rows in a real database, and result files
drawn by the real page and export code from small seeded panel images (no diffusion)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from storyloom.generation.export import export_story
from storyloom.generation.pages.model import PagePanel, PageSpec
from storyloom.jobs.result_files import job_folder
from storyloom.story import grammar, service
from storyloom.story.model import Actor, JobStatus, RenderJob
from storyloom.story.service import Deps
from tests.pages.media import panel_image

# Injection attempts in everything a member writes: each must show as text.
EVIL_TITLE = '<script>alert("title")</script> & <img src=x onerror=alert(1)>'
EVIL_NAME = "Mira"  # names are letters and spaces only (story.limits); the description is free
EVIL_DESCRIPTION = '"><script>alert("cast")</script><b>bold</b>'
EVIL_BEAT = '[Mira] climbs <img src="http://evil.example/x.png"> # </li><script>alert(2)</script>'
EVIL_AUTHOR = "<b>Zed</b> <script>alert(3)</script>"


class NoQueue:
    """Jobs are finished by hand here; nothing is sent."""

    async def submit(self, job_id: int) -> None:
        return None


async def finish(deps: Deps, job: RenderJob, files: Sequence[Path]) -> None:
    """Mark a job done with these result files, as a worker would."""
    async with deps.db.writing() as uow:
        await uow.jobs.set_status(
            job.id, JobStatus.DONE, datetime.now(UTC), files=[p.name for p in files]
        )


async def render_pages(deps: Deps, actor: Actor, out_dir: Path) -> RenderJob:
    """Queue a page render of every beat and finish it with real pages drawn from panel
    images (the worker's export code: PNG pages, PDF, ZIP)."""
    job = await service.render(deps, actor)
    exported = await service.export(deps, actor)
    beats = exported.beats
    panels = [
        PagePanel.from_beat(
            grammar.parse(beat.text).caption, panel_image(beat.position), author=beat.author_name
        )
        for beat in beats
    ]
    story = (await service.status(deps, actor)).story
    spec = PageSpec(title=story.title, contributors=tuple({b.author_name: 0 for b in beats}))
    folder = job_folder(out_dir, job.id)
    cast = [(c.name, c.description) for c in exported.characters]  # as jobs/artifacts does
    files = export_story(panels, spec, folder, ("png", "zip"), stem="story", cast=cast).files()
    await finish(deps, job, files)
    return job


async def render_sheet(deps: Deps, actor: Actor, name: str, out_dir: Path) -> RenderJob:
    """Queue a character sheet and finish it with two sheet images."""
    job = (await service.lock_look(deps, actor, name)).job
    assert job is not None
    folder = job_folder(out_dir, job.id)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for number in (1, 2):
        path = folder / f"sheet-{number}.png"
        panel_image(10 + number, (128, 128)).save(path)
        files.append(path)
    await finish(deps, job, files)
    return job
