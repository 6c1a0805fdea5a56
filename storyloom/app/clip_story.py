"""Render a story file into a short clip: panels held with pan/zoom, or moving in-betweens."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from storyloom.app.render_story import progress_bar, render_story, story_page_panels
from storyloom.app.storyfile import StoryFile
from storyloom.config import Settings
from storyloom.generation.clip import ClipFormat, ClipResult, ClipSpec, build_clip
from storyloom.generation.inbetween import KeyframeVideoMotion, RendererMotion
from storyloom.generation.motion import MotionBackend
from storyloom.generation.renderer import CharacterSpec, StoryRenderer


def motion_backend(
    settings: Settings,
    renderer: StoryRenderer,
    characters: Mapping[str, CharacterSpec],
    style: str,
) -> MotionBackend:
    """The in-between backend the settings choose."""
    if settings.motion_backend == "keyframe-video":
        pipe = renderer.pipe
        return KeyframeVideoMotion.load(settings.motion_model, str(pipe.device), pipe.unet.dtype)
    return RendererMotion(renderer, characters, style)


def clip_story_file(
    story: StoryFile,
    settings: Settings,
    out: Path,
    *,
    fmt: ClipFormat = "mp4",
    motion: bool = False,
    renderer: StoryRenderer | None = None,
    show_progress: bool = True,
) -> ClipResult:
    """Lock the characters, render the panels, then encode ``out/story.<fmt>`` within budget."""
    spec = ClipSpec(budget_bytes=int(settings.clip_budget_mib * 1024 * 1024))
    spec.validate(len(story.panels))
    renderer = renderer or StoryRenderer.from_settings(settings)
    with progress_bar(show_progress) as bar:
        render_task = bar.add_task("rendering", total=None)
        drawn = render_story(
            story,
            renderer,
            lambda p: bar.update(render_task, completed=p.done, total=p.total, description=p.phase),
        )
        panels = story_page_panels(story, drawn.panels)
        backend = (
            motion_backend(settings, renderer, drawn.characters, story.style) if motion else None
        )
        clip_task = bar.add_task("clip", total=1.0)
        out.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode():
            return build_clip(
                panels,
                out / f"story.{fmt}",
                spec,
                motion=backend,
                progress=lambda done, what: bar.update(clip_task, completed=done, description=what),
            )
