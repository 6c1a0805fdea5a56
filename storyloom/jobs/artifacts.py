"""Turn one render job's records into files: pages and exports, a clip, or a character sheet.

Blocking work (diffusion, encoding): callers run it off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from storyloom.generation.clip import ClipSpec, build_clip
from storyloom.generation.export import export_story
from storyloom.generation.layout import PagePanel, PageSpec
from storyloom.generation.pages.sheet import labelled_sheet, sheet_file_stem
from storyloom.generation.renderer import CharacterSpec, PanelSpec, Progress, StoryRenderer
from storyloom.generation.safety import ImageGuard
from storyloom.story import grammar
from storyloom.story.limits import name_key
from storyloom.story.model import Beat, Character, JobKind, RenderJob, Story
from storyloom.story.render_limits import RenderLimits


@dataclass(frozen=True)
class JobInput:
    """Everything a worker reads from the database before rendering a job."""

    job: RenderJob
    story: Story
    beats: Sequence[Beat]  # the job's range, in order
    cast: Sequence[Character]


def character_specs(
    cast: Sequence[Character], character_dir: Path | None = None
) -> dict[str, CharacterSpec]:
    """The renderer's view of the cast: the look is locked by name, description and seed,
    and by the member's reference picture (kept in `character_dir`) where there is one."""
    if character_dir is None and any(c.reference for c in cast):
        # drawing such a character without its picture would be another identity, silently
        raise ValueError("a character has a reference picture and no character folder is set")
    return {
        c.name: CharacterSpec(
            c.name,
            c.description,
            c.seed,
            reference=character_dir / c.reference if c.reference and character_dir else None,
        )
        for c in cast
    }


def beat_panels(beats: Sequence[Beat], cast: Sequence[Character]) -> list[PanelSpec]:
    """One panel per beat, its tags resolved to cast names as the core resolves them."""
    names = {name_key(c.name): c.name for c in cast}
    panels = []
    for beat in beats:
        parsed = grammar.parse(beat.text)
        shown = tuple(names[key] for n in parsed.characters if (key := name_key(n)) in names)
        # a beat with only a caption still needs a picture: draw its narration
        scene = parsed.scene or parsed.narration or parsed.caption
        panels.append(PanelSpec(beat.position, scene, shown, beat.variant))
    return panels


def render_job(
    renderer: StoryRenderer,
    work: JobInput,
    out: Path,
    *,
    clip_budget_bytes: int = 10 * 1024 * 1024,
    limits: RenderLimits | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    guard: ImageGuard | None = None,
    character_dir: Path | None = None,
) -> list[Path]:
    """Render the job into ``out`` and return the files written, main result first. A job
    over the ``limits`` (queued before the operator lowered them) fails before any work.
    With a `guard`, every panel and sheet image passes the image safety check before any
    file is written (clip frames are made from the checked panels)."""
    job, story = work.job, work.story
    if limits is not None:
        limits.check(job.kind, len(work.beats))
    out.mkdir(parents=True, exist_ok=True)
    characters = character_specs(work.cast, character_dir)

    if job.kind in (JobKind.SHEET, JobKind.REROLL):
        character = next(c for c in work.cast if c.id == job.character_id)
        sheet = renderer.lock_character(
            characters[character.name],
            story.style,
            on_progress=on_progress,
            should_cancel=should_cancel,
        )
        # each image checked, then one labelled image (whose look, which one), as members
        # see it in the thread
        images = [
            drawn if guard is None else guard.check(drawn, f"sheet {number}")
            for number, drawn in enumerate(sheet.images, 1)
        ]
        path = out / f"{sheet_file_stem(character.name)}.png"
        labelled_sheet(character.name, images).save(path)
        return [path]

    panels = beat_panels(work.beats, work.cast)
    rendered = renderer.render_panels(
        panels,
        characters,
        style=story.style,
        seed=story.seed,
        on_progress=on_progress,
        should_cancel=should_cancel,
    )
    if guard is not None:
        rendered = [
            replace(panel, image=guard.check(panel.image, f"panel {spec.index}"))
            for spec, panel in zip(panels, rendered, strict=True)
        ]
    page_panels = [
        replace(
            PagePanel.from_beat(
                grammar.parse(beat.text).caption,
                panel.image,
                author=beat.author_name,
                prompt=spec.scene,
                characters=panel.characters,
                seed=panel.seed,
            ),
            beat=beat.text,  # story.md lists the whole beat, not just its caption
        )
        for beat, spec, panel in zip(work.beats, panels, rendered, strict=True)
    ]
    if job.kind == JobKind.PANEL:
        # one panel drawn again: the picture later pages will show for this beat
        path = out / f"panel-{work.beats[0].position}.png"
        rendered[0].image.save(path)
        return [path]
    if job.kind == JobKind.CLIP:
        clip = build_clip(page_panels, out / "story.mp4", ClipSpec(budget_bytes=clip_budget_bytes))
        return [clip.path]
    contributors = tuple(dict.fromkeys(beat.author_name for beat in work.beats))
    page = PageSpec(title=story.title, contributors=contributors, seed=story.seed)
    cast = [(c.name, c.description) for c in work.cast]
    return export_story(
        page_panels, page, out, ("png", "pdf", "zip"), stem="story", cast=cast
    ).files()
