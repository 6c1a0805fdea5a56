"""Bad page input: a clear LayoutError naming the allowed range, or a graceful page."""

from __future__ import annotations

import pytest

from storyloom.generation.layout import (
    EmptyStoryError,
    LayoutError,
    PagePanel,
    PageSpec,
    plan_pages,
    render_pages,
)
from storyloom.generation.pages.draw import PLACEHOLDER_FILL

from .media import panel_image


@pytest.mark.parametrize(("field", "value"), [("width", 0), ("height", 100_000), ("width", -5)])
def test_absurd_page_sizes_name_the_allowed_range(field: str, value: int) -> None:
    spec = PageSpec(**{field: value})  # type: ignore[arg-type]
    with pytest.raises(LayoutError, match="256–8192 px"):
        render_pages([PagePanel.from_beat("hi")], spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (PageSpec(gutter=500), "gutter 500 px is out of range; use 0–128 px"),
        (PageSpec(border=-1), "border -1 px is out of range"),
        (PageSpec(panels_per_page=0), "panels per page 0 is out of range"),
        (PageSpec(layout="spiral"), "unknown layout 'spiral'"),  # type: ignore[arg-type]
    ],
)
def test_other_bad_settings_say_what_to_use(spec: PageSpec, message: str) -> None:
    with pytest.raises(LayoutError, match=message):
        plan_pages(3, spec)


def test_a_crowded_small_page_asks_for_a_larger_page() -> None:
    spec = PageSpec(width=256, height=256, gutter=64, title="Title", panels_per_page=16)
    with pytest.raises(LayoutError, match="use a larger page"):
        plan_pages(16, spec)


def test_an_empty_story_is_a_clear_error() -> None:
    with pytest.raises(EmptyStoryError, match="no panels"):
        render_pages([], PageSpec())


def test_a_panel_without_an_image_gets_a_placeholder() -> None:
    panels = [PagePanel.from_beat("drawn", panel_image(0)), PagePanel.from_beat("missing")]
    page = render_pages(panels, PageSpec(layout="strip", width=600, height=300, border=0))[0]
    (_, drawn), (_, missing) = page.frame.panels
    corner = (missing.x0 + 3, missing.y0 + missing.height // 3)
    assert page.image.getpixel(corner) == PLACEHOLDER_FILL
    assert page.image.getpixel((drawn.x0 + 3, drawn.y0 + drawn.height // 3)) != PLACEHOLDER_FILL
    assert [t.text for t in page.texts if t.kind == "hint"] == ["no image"]
