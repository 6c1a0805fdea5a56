"""Render a story file to a folder: character sheets, panels, a page and a manifest."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from storyloom.app.storyfile import StoryFile
from storyloom.config import Settings
from storyloom.generation.export import ExportFormat, export_story
from storyloom.generation.layout import PagePanel, PageSpec
from storyloom.generation.renderer import (
    CharacterSheet,
    CharacterSpec,
    PanelSpec,
    RenderedPanel,
    StoryRenderer,
)
from storyloom.generation.renderer import Progress as RenderProgress


@dataclass
class StoryRenderResult:
    """Where the files of one render went."""

    out: Path
    sheets: list[Path]
    panels: list[Path]
    pages: list[Path]
    exports: list[Path]
    manifest: Path


def _slug(name: str) -> str:
    return "-".join(name.lower().split())


@dataclass
class RenderedStory:
    """A story's characters, their sheets and its rendered panels, before any file is written."""

    characters: dict[str, CharacterSpec]
    sheets: dict[str, CharacterSheet]
    panels: list[RenderedPanel]
    timings: dict[str, float]


def progress_bar(show: bool) -> Progress:
    """A terminal progress bar counting denoising steps (hidden when ``show`` is false)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        disable=not show,
        transient=True,
    )


def planned_steps(story: StoryFile, renderer: StoryRenderer) -> int:
    """Denoising steps a whole-story render takes: one lock per character, then the batches."""
    batches = -(-len(story.panels) // renderer.settings.max_batch)
    return renderer.settings.steps * (len(story.characters) + batches)


def render_story(
    story: StoryFile,
    renderer: StoryRenderer,
    on_progress: Callable[[RenderProgress], None] | None = None,
) -> RenderedStory:
    """Lock every character (its sheet and store), then render every panel against them."""
    characters = {
        c.name: CharacterSpec(c.name, c.description, c.seed, c.identity_prompts, c.reference)
        for c in story.characters
    }
    if story.identity_mode is not None:
        renderer = renderer.with_identity_mode(story.identity_mode)
    timings: dict[str, float] = {}
    sheets = {}
    for name, character in characters.items():
        t0 = time.perf_counter()
        sheets[name] = renderer.lock_character(character, story.style, on_progress=on_progress)
        timings[f"lock {name}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    panels = renderer.render_panels(
        [PanelSpec(p.number, p.scene, p.characters) for p in story.panels],
        characters,
        style=story.style,
        seed=story.seed,
        on_progress=on_progress,
    )
    timings["panels"] = time.perf_counter() - t0
    return RenderedStory(characters, sheets, panels, timings)


def render_story_file(
    story: StoryFile,
    settings: Settings,
    out: Path,
    *,
    page: PageSpec | None = None,
    formats: Sequence[ExportFormat] = ("png",),
    renderer: StoryRenderer | None = None,
    show_progress: bool = True,
) -> StoryRenderResult:
    """Lock every character, render every panel, then move the files into ``out`` at once.

    ``page`` sets the layout (checked before any rendering); ``formats`` picks the page
    exports: PNG pages, a PDF of the story, a ZIP with pages, panels and story.md.
    """
    page = page or PageSpec(title=story.title, seed=story.seed)
    page.validate()
    started = time.perf_counter()
    renderer = renderer or StoryRenderer.from_settings(settings)
    load_seconds = time.perf_counter() - started
    steps = renderer.settings.steps
    with progress_bar(show_progress) as bar:
        task = bar.add_task("rendering", total=planned_steps(story, renderer))
        drawn = render_story(
            story, renderer, lambda p: bar.update(task, advance=1, description=p.phase)
        )
    sheets, rendered, timings = drawn.sheets, drawn.panels, drawn.timings

    # 3. write everything into a temporary folder, then move it into place
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".render-", dir=out))
    try:
        files: dict[str, list[str]] = {"sheets": [], "panels": []}
        for name, sheet in sheets.items():
            for j, image in enumerate(sheet.images, 1):
                rel = f"sheets/{_slug(name)}-{j}.png"
                _save(image, staging / rel)
                files["sheets"].append(rel)
        for panel in rendered:
            rel = f"panels/panel-{panel.index:03d}.png"
            _save(panel.image, staging / rel)
            files["panels"].append(rel)
        exported = export_story(
            story_page_panels(story, rendered), page, staging, formats, stem="story"
        )
        files["exports"] = [str(f.relative_to(staging)) for f in exported.files()]
        files["pages"] = [str(f.relative_to(staging)) for f in exported.pages]
        manifest = {
            "title": story.title,
            "model": renderer.loaded.model_id,
            "family": renderer.loaded.family,
            "style": story.style,
            "seed": story.seed,
            "settings": {
                "width": renderer.settings.width,
                "height": renderer.settings.height,
                "steps": steps,
                "guidance": renderer.settings.guidance,
                "scheduler": renderer.scheduler_name,
                "csa_rate": renderer.settings.rate,
                "identity_images": renderer.settings.identity_images,
            },
            "characters": {
                name: {
                    "store_key": sheet.store.key,
                    "store_bytes": sheet.store.nbytes,
                    "identity_seeds": sheet.seeds,
                    "identity_prompts": list(sheet.store.spec.identity_prompts),
                }
                for name, sheet in sheets.items()
            },
            "panels": [
                {"index": p.index, "seed": p.seed, "characters": list(p.characters)}
                for p in rendered
            ],
            "layout": page.layout,
            "timings_seconds": {"load": load_seconds, **timings},
            "files": files,
        }
        (staging / "render.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        for item in sorted(staging.rglob("*")):
            if item.is_file():
                target = out / item.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return StoryRenderResult(
        out=out,
        sheets=[out / f for f in files["sheets"]],
        panels=[out / f for f in files["panels"]],
        pages=[out / f for f in files["pages"]],
        exports=[out / f for f in files["exports"]],
        manifest=out / "render.json",
    )


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")


def story_page_panels(story: StoryFile, rendered: Sequence[RenderedPanel]) -> list[PagePanel]:
    """Page panels for rendered story panels: caption → narration and bubbles, tags dropped."""
    by_number = {p.number: p for p in story.panels}
    panels = []
    for item in rendered:
        source = by_number[item.index]
        panel = PagePanel.from_beat(
            source.caption,
            item.image,
            prompt=source.scene,
            characters=item.characters,
            seed=item.seed,
        )
        beat = f"{source.scene} # {source.caption}" if source.caption else source.scene
        panels.append(dataclasses.replace(panel, beat=beat))
    return panels
