"""Alt text for a posted result, built from the beats it draws: what a screen reader (or a
member whose image did not load) reads instead of the picture."""

from __future__ import annotations

from storyloom.story.grammar import strip_tags
from storyloom.story.model import JobKind, RenderJob
from storyloom.story.paging import clip

MAX_ALT_TEXT = 1000  # Slack's alt_txt limit (Discord's attachment description: 1,024)


def alt_text(title: str, job: RenderJob, character: str | None = None) -> str:
    """One description of a job's result: the kind, the story and each panel's beat."""
    panels = [" ".join(strip_tags(beat.text).replace(" # ", ": ").split()) for beat in job.beats]
    if job.kind in (JobKind.SHEET, JobKind.REROLL):
        text = f"Character sheet of {character or 'a character'} for the comic “{title}”"
    elif job.kind == JobKind.PANEL and panels:
        text = f"Panel {job.beats[0].position} of the comic “{title}”, drawn again: {panels[0]}"
    else:
        what = "Animated clip" if job.kind == JobKind.CLIP else "Comic page"
        count = f"{len(panels)} panel{'s' if len(panels) != 1 else ''}"
        numbered = "; ".join(f"{b.position}. {p}" for b, p in zip(job.beats, panels, strict=True))
        text = f"{what} of “{title}”, {count}" + (f": {numbered}" if numbered else "")
    return clip(text, MAX_ALT_TEXT)
