"""Drawing step: turn page plans into pixels, recording every string it prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

from storyloom.generation.pages.boxes import CaptionBox, PagePlan, plan_story
from storyloom.generation.pages.captions import FittedText, load_font
from storyloom.generation.pages.geometry import PageFrame, Rect
from storyloom.generation.pages.model import PagePanel, PageSpec

INK = (20, 20, 20)
NARRATION_FILL = (255, 248, 220)
PLACEHOLDER_FILL = (205, 205, 210)
PLACEHOLDER_TEXT = "no image"


@dataclass(frozen=True)
class DrawnText:
    """One string as printed on a page, and what it was (title, narration, speaker…)."""

    page: int
    kind: str
    text: str


@dataclass(frozen=True)
class RenderedPage:
    """A finished page image, its geometry, and the exact strings drawn on it."""

    image: Image.Image
    frame: PageFrame
    texts: tuple[DrawnText, ...]


def cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """`image` scaled and centre-cropped to exactly width×height (no letterboxing)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    scale = max(width / rgb.width, height / rgb.height)
    crop_w, crop_h = width / scale, height / scale
    left, top = (rgb.width - crop_w) / 2, (rgb.height - crop_h) / 2
    box = (left, top, left + crop_w, top + crop_h)
    # reducing_gap: a cheap integer pre-shrink first, so big panels resize fast.
    return rgb.resize((width, height), Image.Resampling.LANCZOS, box=box, reducing_gap=2.0)


def placeholder(width: int, height: int) -> Image.Image:
    """A grey panel with a cross, drawn where a beat has no image yet."""
    image = Image.new("RGB", (width, height), PLACEHOLDER_FILL)
    draw = ImageDraw.Draw(image)
    draw.line((0, 0, width - 1, height - 1), fill=(170, 170, 178), width=2)
    draw.line((0, height - 1, width - 1, 0), fill=(170, 170, 178), width=2)
    return image


class _Pen:
    """Draws text and remembers it, so tests can read what a page actually prints."""

    def __init__(self, draw: ImageDraw.ImageDraw, page: int) -> None:
        self.draw = draw
        self.page = page
        self.texts: list[DrawnText] = []

    def text(self, xy: tuple[float, float], text: str, size: int, kind: str, bold: bool) -> None:
        load_font(size, bold).draw(self.draw, xy, text, INK)
        self.texts.append(DrawnText(self.page, kind, text))

    def block(self, fitted: FittedText, band: Rect, kind: str, centre: bool = True) -> None:
        font = load_font(fitted.size, fitted.bold)
        y = band.y0 + (band.height - fitted.height) // 2
        for line in fitted.lines:
            x = band.x0 + (band.width - font.getlength(line)) / 2 if centre else band.x0
            self.text((x, y), line, fitted.size, kind, fitted.bold)
            y += fitted.line_height


def _draw_box(pen: _Pen, box: CaptionBox) -> None:
    r, pad, step = box.rect, box.padding, box.text.line_height
    draw = pen.draw
    if box.kind == "narration":
        draw.rectangle((r.x0, r.y0, r.x1 - 1, r.y1 - 1), fill=NARRATION_FILL, outline=INK)
        y = r.y0 + pad
    else:
        body_bottom = r.y1 - 1 - box.tail
        radius = min(step, (body_bottom - r.y0) // 2)
        draw.rounded_rectangle(
            (r.x0, r.y0, r.x1 - 1, body_bottom), radius, fill="white", outline=INK
        )
        # The tail points down towards the speaker, from the bubble's inner third.
        tip_x = r.x0 + r.width // 3 if r.x0 < r.x1 - r.width // 2 else r.x1 - r.width // 3
        tail = [(tip_x - box.tail, body_bottom - 1), (tip_x + box.tail, body_bottom - 1)]
        draw.polygon([*tail, (tip_x, r.y1 - 1)], fill="white", outline=INK)
        draw.line(tail, fill="white", width=1)
        pen.text((r.x0 + pad, r.y0 + pad), box.speaker, box.text.size, "speaker", True)
        y = r.y0 + pad + step
    for line in box.text.lines:
        pen.text((r.x0 + pad, y), line, box.text.size, box.kind, False)
        y += step


def draw_captions(image: Image.Image, boxes: Sequence[CaptionBox]) -> tuple[DrawnText, ...]:
    """Draw caption boxes onto `image` (a clip frame's overlay); returns what was printed."""
    pen = _Pen(ImageDraw.Draw(image), 0)
    for box in boxes:
        _draw_box(pen, box)
    return tuple(pen.texts)


def draw_page(plan: PagePlan, panels: Sequence[PagePanel], spec: PageSpec) -> RenderedPage:
    """Draw one planned page: panels (or placeholders), borders, captions, title, credits."""
    frame = plan.frame
    page = Image.new("RGB", (frame.width, frame.height), spec.background)
    pen = _Pen(ImageDraw.Draw(page), frame.number)
    for (index, rect), boxes in zip(frame.panels, plan.captions, strict=True):
        source = panels[index].image
        if source is None:
            page.paste(placeholder(rect.width, rect.height), (rect.x0, rect.y0))
            hint = load_font(max(8, min(24, rect.width // 12)))
            hint_w = hint.getlength(PLACEHOLDER_TEXT)
            if hint_w < rect.width and 2 * hint.size < rect.height:
                hint_xy = (rect.x0 + (rect.width - hint_w) / 2, rect.y0 + rect.height // 2)
                pen.text(hint_xy, PLACEHOLDER_TEXT, int(hint.size), "hint", False)
        else:
            page.paste(cover(source, rect.width, rect.height), (rect.x0, rect.y0))
        if spec.border:
            pen.draw.rectangle(
                (rect.x0, rect.y0, rect.x1 - 1, rect.y1 - 1),
                outline=spec.border_color,
                width=spec.border,
            )
        for box in boxes:
            _draw_box(pen, box)
    if plan.title is not None and frame.header is not None:
        pen.block(plan.title, frame.header, "title")
    if plan.credits is not None and frame.footer is not None:
        pen.block(plan.credits, frame.footer, "credits")
    return RenderedPage(page, frame, tuple(pen.texts))


def render_pages(panels: Sequence[PagePanel], spec: PageSpec) -> list[RenderedPage]:
    """Lay out and draw every page of a story (LayoutError on bad sizes or no panels)."""
    return [draw_page(plan, panels, spec) for plan in plan_story(panels, spec)]
