"""Where a panel's narration box and speech bubbles go, with their text already fitted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from storyloom.generation.pages.captions import (
    FittedText,
    ellipsize,
    fit_text,
    load_font,
    printable,
)
from storyloom.generation.pages.geometry import PageFrame, Rect, plan_pages
from storyloom.generation.pages.model import PagePanel, PageSpec


@dataclass(frozen=True)
class CaptionBox:
    """A narration box or a speech bubble: its rectangle, text lines and speaker label."""

    kind: Literal["narration", "bubble"]
    rect: Rect
    text: FittedText
    padding: int
    speaker: str = ""
    tail: int = 0  # px at the bottom of a bubble's rect kept for its tail

    def strings(self) -> tuple[str, ...]:
        """Every string this box prints, label first."""
        return ((self.speaker,) if self.speaker else ()) + self.text.lines


def _max_font(inner: Rect) -> int:
    return min(36, max(10, round(inner.width / 20)))


def _bubble(
    speaker: str, line: str, area: Rect, max_h: int, max_size: int, right: bool
) -> CaptionBox | None:
    """One speech bubble in the top of `area`, at most `max_h` tall, or None if it can't fit."""
    pad = max(2, max_size // 3)
    tail = max(4, max_size // 2)
    width = int(area.width * 0.85)
    fitted = fit_text(line, width - 2 * pad, max_h - 2 * pad - tail, max_size, reserved_lines=1)
    if fitted is None or not fitted.lines:
        return None
    bold = load_font(fitted.size, bold=True)
    label = printable(speaker)
    if bold.getlength(label) > width - 2 * pad:
        label = ellipsize(label, bold, width - 2 * pad)
    regular = load_font(fitted.size)
    text_w = max(bold.getlength(label), *(regular.getlength(s) for s in fitted.lines))
    w = min(width, int(text_w) + 2 * pad + 1)
    h = fitted.height + fitted.line_height + 2 * pad + tail
    x0 = area.x1 - w if right else area.x0
    return CaptionBox("bubble", Rect(x0, area.y0, x0 + w, area.y0 + h), fitted, pad, label, tail)


def place_captions(panel: PagePanel, rect: Rect, border: int) -> list[CaptionBox]:
    """Fit the panel's bubbles (top) and narration box (bottom) inside `rect`."""
    inner = rect.inset(border + max(2, min(rect.width, rect.height) // 40))
    if inner.width <= 0 or inner.height <= 0:
        return []
    size = _max_font(inner)
    boxes: list[CaptionBox] = []
    narration = printable(panel.caption)
    dialogue = [(s, line) for s, line in panel.dialogue if printable(line)]
    if dialogue:
        region_h = int(inner.height * (0.45 if narration else 0.6))
        gap = max(2, size // 4)
        each = (region_h - gap * (len(dialogue) - 1)) // len(dialogue)
        y = inner.y0
        for i, (speaker, line) in enumerate(dialogue):
            area = Rect(inner.x0, y, inner.x1, inner.y0 + region_h)
            bubble = _bubble(speaker, line, area, min(each, area.height), size, right=i % 2 == 1)
            if bubble is None:
                break  # later bubbles would not fit either; never overflow the panel
            boxes.append(bubble)
            y = bubble.rect.y1 + gap
    if narration:
        pad = max(2, size // 3)
        max_h = int(inner.height * (0.35 if dialogue else 0.5))
        fitted = fit_text(narration, inner.width - 2 * pad, max_h - 2 * pad, size)
        if fitted is not None and fitted.lines:
            h = fitted.height + 2 * pad
            box = Rect(inner.x0, inner.y1 - h, inner.x1, inner.y1)
            boxes.append(CaptionBox("narration", box, fitted, pad))
    return boxes


@dataclass(frozen=True)
class PagePlan:
    """A page's full geometry: panel rectangles, header/footer text and caption boxes."""

    frame: PageFrame
    captions: tuple[tuple[CaptionBox, ...], ...]  # one tuple per entry of frame.panels
    title: FittedText | None
    credits: FittedText | None


def credits_line(spec: PageSpec, page: int, pages: int) -> str:
    """Footer text: contributors, then the page number when the story has several pages."""
    parts = []
    names = [printable(name) for name in spec.contributors if printable(name)]
    if names:
        parts.append("By " + ", ".join(names))
    if pages > 1:
        parts.append(f"page {page + 1} of {pages}")
    return " · ".join(parts)


def _band_text(text: str, band: Rect | None, bold: bool) -> FittedText | None:
    if band is None or not printable(text):
        return None
    return fit_text(text, band.width, band.height, int(band.height * 0.7), bold=bold)


def plan_story(panels: Sequence[PagePanel], spec: PageSpec) -> list[PagePlan]:
    """Lay out every page of the story as data (no pixels); see `draw_page` for the pixels."""
    frames = plan_pages(len(panels), spec)
    plans = []
    for frame in frames:
        captions = tuple(
            tuple(place_captions(panels[i], rect, spec.border)) for i, rect in frame.panels
        )
        credits = credits_line(spec, frame.number, len(frames))
        plans.append(
            PagePlan(
                frame,
                captions,
                _band_text(spec.title, frame.header, bold=True),
                _band_text(credits, frame.footer, bold=False),
            )
        )
    return plans
