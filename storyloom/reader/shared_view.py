"""The reader view of a shared story: its stored content, with addresses under its link."""

from __future__ import annotations

from storyloom.generation.pages.geometry import chunk
from storyloom.generation.pages.model import PageSpec
from storyloom.reader import view
from storyloom.reader.source import StoryContent


def shared_view(content: StoryContent, base: str) -> view.ReaderView:
    """The page for `content`; images and the clip are addressed under `base` (relative to
    the page), by number only."""
    beats = content.beats
    panels = [view.Panel(b.position, view.panel_alt(b.text), b.author_name) for b in beats]
    # pages are drawn with the default page settings (jobs/artifacts.render_job)
    per_page = chunk(len(panels), PageSpec().per_page()) if panels else []
    srcs = [f"{base}/page/{n}" for n in range(1, len(content.pages) + 1)]
    cast = tuple(
        view.CastMember(
            character.name,
            character.description,
            tuple(f"{base}/sheet/{character.id}/{n}" for n in range(1, len(sheets) + 1)),
        )
        for character, sheets in content.cast
    )
    return view.ReaderView(
        title=content.story.title,
        pages=view.pages(srcs, panels, per_page),
        cast=cast,
        credits=view.credits([(b.position, b.author_name) for b in beats]),
        clip_src=f"{base}/clip" if content.clip else None,
    )
