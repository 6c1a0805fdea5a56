"""Pure page geometry: which panels go on which page, and each panel's rectangle.

No drawing happens here, so every layout's promises (all panels present, none
overlapping, all inside the page) can be checked as properties of plain numbers.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from storyloom.generation.pages.model import MAX_PAGE_PX, EmptyStoryError, LayoutError, PageSpec

# Smaller panels cannot show an image or a line of text.
MIN_PANEL_PX = 16


@dataclass(frozen=True, order=True)
class Rect:
    """A half-open pixel rectangle [x0, x1) × [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        """Width in px."""
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        """Height in px."""
        return self.y1 - self.y0

    def inset(self, px: int) -> Rect:
        """This rectangle shrunk by `px` on every side (never below zero size)."""
        px = min(px, self.width // 2, self.height // 2)
        return Rect(self.x0 + px, self.y0 + px, self.x1 - px, self.y1 - px)

    def contains(self, other: Rect) -> bool:
        """True when `other` lies entirely inside this rectangle."""
        return (
            self.x0 <= other.x0
            and self.y0 <= other.y0
            and other.x1 <= self.x1
            and other.y1 <= self.y1
        )

    def overlaps(self, other: Rect) -> bool:
        """True when the two rectangles share at least one pixel."""
        return (
            self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1
        )


@dataclass(frozen=True)
class PageFrame:
    """One page's geometry: size, header/footer bands and one rectangle per panel."""

    number: int
    width: int
    height: int
    header: Rect | None
    footer: Rect | None
    panels: tuple[tuple[int, Rect], ...]  # (story panel index, rectangle)


def chunk(count: int, per_page: int) -> list[range]:
    """Split panel indices into balanced pages of at most `per_page` (10 by 9 → 5 + 5)."""
    pages = math.ceil(count / per_page)
    base, extra = divmod(count, pages)
    out, start = [], 0
    for page in range(pages):
        size = base + (1 if page < extra else 0)
        out.append(range(start, start + size))
        start += size
    return out


def split(start: int, end: int, weights: list[float], gutter: int) -> list[tuple[int, int]]:
    """Cut [start, end) into len(weights) spans separated by `gutter`, sized by weight."""
    free = end - start - gutter * (len(weights) - 1)
    total = sum(weights)
    spans, acc = [], 0.0
    for i, weight in enumerate(weights):
        a = start + round(free * acc / total) + i * gutter
        acc += weight
        b = start + round(free * acc / total) + i * gutter
        spans.append((a, b))
    return spans


def _rows(spec: PageSpec, page: int, count: int, aspect: float) -> list[list[float]]:
    """Panel width weights per row for one page of `count` panels."""
    if spec.layout == "strip":
        return [[1.0] * count]
    if spec.layout == "vertical":
        return [[1.0] for _ in range(count)]
    if spec.layout == "grid":
        cols = min(count, max(1, round(math.sqrt(count * aspect))))
        sizes = [cols] * (count // cols) + ([count % cols] if count % cols else [])
        return [[1.0] * n for n in sizes]
    # classic: 1-3 panels per row, sizes and widths drawn from the story seed, so the same
    # story always gets the same page.
    rng = random.Random(f"classic:{spec.seed}:{page}")
    rows = max(1, math.ceil(count / 3), round(count / 1.8))
    sizes = [count // rows + (1 if r < count % rows else 0) for r in range(rows)]
    for _ in range(rows * 2):
        a, b = rng.randrange(rows), rng.randrange(rows)
        if a != b and sizes[a] > 1 and sizes[b] < 3:
            sizes[a] -= 1
            sizes[b] += 1
    return [[rng.uniform(0.6, 1.4) for _ in range(n)] for n in sizes]


def _bands(spec: PageSpec, height: int, pages: int) -> tuple[int, int]:
    """Header and footer heights: a title header, and a footer for credits/page numbers."""
    header = min(160, max(20, round(height * 0.06))) if spec.title.strip() else 0
    has_footer = bool(spec.contributors) or pages > 1
    footer = min(100, max(14, round(height * 0.035))) if has_footer else 0
    return header, footer


def plan_pages(count: int, spec: PageSpec) -> list[PageFrame]:
    """Page and panel rectangles for `count` panels; LayoutError if they cannot fit."""
    width, height = spec.size()
    if count <= 0:
        raise EmptyStoryError("the story has no panels yet; add a beat before rendering")
    pages = chunk(count, spec.per_page())
    header_h, footer_h = _bands(spec, height, len(pages))
    g = spec.gutter
    top = g + header_h + (g if header_h else 0)
    bottom = height - g - footer_h - (g if footer_h else 0)
    frames = []
    for number, indices in enumerate(pages):
        rows = _rows(spec, number, len(indices), width / max(1, bottom - top))
        row_weights = [1.0] * len(rows)
        if spec.layout == "classic":
            rng = random.Random(f"classic-rows:{spec.seed}:{number}")
            row_weights = [rng.uniform(0.8, 1.2) for _ in rows]
        rects: list[tuple[int, Rect]] = []
        it = iter(indices)
        for (y0, y1), weights in zip(split(top, bottom, row_weights, g), rows, strict=True):
            for x0, x1 in split(g, width - g, weights, g):
                rects.append((next(it), Rect(x0, y0, x1, y1)))
        smallest = min(min(r.width, r.height) for _, r in rects)
        if smallest < MIN_PANEL_PX:
            raise LayoutError(
                f"a {width}×{height} px page with {g} px gutters leaves panels of {smallest} px "
                f"(at least {MIN_PANEL_PX} px needed); use a larger page (up to {MAX_PAGE_PX} "
                f"px), smaller gutters or fewer panels per page"
            )
        header = Rect(g, g, width - g, g + header_h) if header_h else None
        footer = Rect(g, height - g - footer_h, width - g, height - g) if footer_h else None
        frames.append(PageFrame(number, width, height, header, footer, tuple(rects)))
    return frames
