"""Comic page layout: the public face of `storyloom.generation.pages`.

A page is built in two steps. `plan_story` is pure geometry — page, panel, header,
footer and caption rectangles with their fitted text lines, as plain data — so layout
promises can be property-tested. `render_pages` then draws those plans with the bundled
DejaVu Sans font and records every string it prints (`RenderedPage.texts`).

Layouts: `grid` (n×m from the panel count), `strip` (one row of up to 4), `classic`
(rows of mixed widths drawn from the story seed) and `vertical` (one column). Stories
longer than a page continue on further pages with balanced panel counts.
"""

from storyloom.generation.pages.boxes import CaptionBox, PagePlan, place_captions, plan_story
from storyloom.generation.pages.captions import fit_text, printable, split_caption, strip_tags
from storyloom.generation.pages.draw import DrawnText, RenderedPage, cover, render_pages
from storyloom.generation.pages.geometry import MIN_PANEL_PX, PageFrame, Rect, plan_pages
from storyloom.generation.pages.model import (
    DEFAULT_SIZE,
    LAYOUTS,
    MAX_PAGE_PX,
    MIN_PAGE_PX,
    EmptyStoryError,
    Layout,
    LayoutError,
    PagePanel,
    PageSpec,
)

__all__ = [
    "DEFAULT_SIZE",
    "LAYOUTS",
    "MAX_PAGE_PX",
    "MIN_PAGE_PX",
    "MIN_PANEL_PX",
    "CaptionBox",
    "DrawnText",
    "EmptyStoryError",
    "Layout",
    "LayoutError",
    "PageFrame",
    "PagePanel",
    "PagePlan",
    "PageSpec",
    "Rect",
    "RenderedPage",
    "cover",
    "fit_text",
    "place_captions",
    "plan_pages",
    "plan_story",
    "printable",
    "render_pages",
    "split_caption",
    "strip_tags",
]
