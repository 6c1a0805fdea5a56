"""The reader view of the ZIP export: the same page, its images beside it in the archive."""

from __future__ import annotations

from collections.abc import Sequence

from storyloom.generation.pages.geometry import chunk
from storyloom.generation.pages.model import PagePanel, PageSpec
from storyloom.reader import view


def page_name(number: int) -> str:
    """A page's path inside the export (relative to story.html)."""
    return f"pages/page-{number:02d}.png"


def export_view(
    panels: Sequence[PagePanel],
    spec: PageSpec,
    page_count: int,
    cast: Sequence[tuple[str, str]] = (),
) -> view.ReaderView:
    """The reader page for an export of `panels` drawn on `page_count` pages; `cast` is
    (name, description) pairs (their sheets are other renders' files, not in the archive)."""
    told = [
        view.Panel(number, view.panel_alt(panel.beat or panel.caption), panel.author)
        for number, panel in enumerate(panels, start=1)
    ]
    per_page = chunk(len(panels), spec.per_page()) if panels else []
    return view.ReaderView(
        title=spec.title or "Untitled story",
        pages=view.pages([page_name(n) for n in range(1, page_count + 1)], told, per_page),
        cast=tuple(view.CastMember(name, description) for name, description in cast),
        credits=view.credits([(p.number, p.author) for p in told if p.author]),
    )
