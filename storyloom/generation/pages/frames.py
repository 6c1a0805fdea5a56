"""Clip frames: a timeline of holds and transitions, and the pixels of each frame.

Each panel is held with a slow pan/zoom (zooming in on even panels, out on odd ones, and
panning the other way each time, so consecutive shots do not look alike); consecutive
panels crossfade, or show a motion backend's in-betweens, over a window centred on the
cut. Captions are drawn once per panel as an overlay and faded with their panel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from PIL import Image

from storyloom.generation.pages.boxes import place_captions
from storyloom.generation.pages.draw import DrawnText, cover, draw_captions, placeholder
from storyloom.generation.pages.geometry import Rect
from storyloom.generation.pages.model import PagePanel


@dataclass(frozen=True)
class Moment:
    """What frame `f` shows: panel `a`, blended by `p` towards panel `b` (None: no blend)."""

    a: int
    b: int | None
    p: float
    step: int  # frame index inside the transition window (for in-betweens)
    span: int  # frames in a transition window


@dataclass(frozen=True)
class Timeline:
    """Frame boundaries of each panel's hold and the half-width of each transition."""

    bounds: tuple[int, ...]  # len = panels + 1; panel i owns frames [bounds[i], bounds[i+1])
    half: int

    @classmethod
    def build(cls, panels: int, frames: int, transition_frames: int) -> Timeline:
        """Spread `frames` evenly over `panels`; transitions never overlap each other."""
        bounds = tuple(round(i * frames / panels) for i in range(panels + 1))
        shortest = min(b - a for a, b in pairwise(bounds))
        return cls(bounds, max(0, min(transition_frames // 2, shortest // 2)))

    @property
    def frames(self) -> int:
        """Total frame count."""
        return self.bounds[-1]

    def at(self, f: int) -> Moment:
        """The panels and blend at frame `f`."""
        i = next(k for k in range(len(self.bounds) - 1) if f < self.bounds[k + 1])
        h, last = self.half, len(self.bounds) - 2
        if h and i < last and f >= self.bounds[i + 1] - h:
            start = self.bounds[i + 1] - h
            return Moment(i, i + 1, (f - start + 0.5) / (2 * h), f - start, 2 * h)
        if h and i > 0 and f < self.bounds[i] + h:
            start = self.bounds[i] - h
            return Moment(i - 1, i, (f - start + 0.5) / (2 * h), f - start, 2 * h)
        return Moment(i, None, 0.0, 0, 0)

    def progress(self, panel: int, f: int) -> float:
        """How far (0..1) panel `panel`'s pan/zoom has gone at frame `f`."""
        h, last = self.half, len(self.bounds) - 2
        start = self.bounds[panel] - (h if panel > 0 else 0)
        end = self.bounds[panel + 1] + (h if panel < last else 0)
        return min(1.0, max(0.0, (f - start) / max(1, end - start - 1)))


@dataclass(frozen=True)
class _Overlay:
    rgb: Image.Image
    alpha: Image.Image
    at: tuple[int, int]


class FrameMaker:
    """Makes the RGB frames of one clip at one size."""

    def __init__(
        self,
        panels: Sequence[PagePanel],
        size: tuple[int, int],
        timeline: Timeline,
        *,
        zoom: float,
        captions: bool,
        inbetweens: Sequence[Sequence[Image.Image]] | None = None,
    ) -> None:
        self.size, self.timeline, self.zoom = size, timeline, zoom
        self.inbetweens = inbetweens
        w, h = size
        big = (round(w * (1 + zoom)), round(h * (1 + zoom)))
        self.sources = [
            cover(p.image, *big) if p.image is not None else placeholder(*big) for p in panels
        ]
        self.texts: list[DrawnText] = []
        self.overlays = [self._overlay(panel) if captions else [] for panel in panels]

    def _overlay(self, panel: PagePanel) -> list[_Overlay]:
        """Each caption box drawn once as its own small RGBA piece (cheap to paste)."""
        w, h = self.size
        pieces = []
        for box in place_captions(panel, Rect(0, 0, w, h), 0):
            r = box.rect
            layer = Image.new("RGBA", (r.x1, r.y1), (0, 0, 0, 0))
            self.texts += draw_captions(layer, [box])
            crop = layer.crop((r.x0, r.y0, r.x1, r.y1))
            pieces.append(_Overlay(crop.convert("RGB"), crop.getchannel("A"), (r.x0, r.y0)))
        return pieces

    def _shot(self, panel: int, f: int) -> Image.Image:
        """Panel `panel` at frame `f` of its slow pan/zoom."""
        s = self.timeline.progress(panel, f)
        src, (w, h) = self.sources[panel], self.size
        z = s if panel % 2 == 0 else 1 - s
        scale = (1 + self.zoom) / (1 + self.zoom * z)
        ww, wh = w * scale, h * scale
        pan = (2 * s - 1) * (1 if panel % 4 < 2 else -1)
        cx = src.width / 2 + (src.width - ww) / 2 * pan * 0.8
        cy = src.height / 2 + (src.height - wh) / 2 * pan * 0.3
        x0, y0 = max(0.0, cx - ww / 2), max(0.0, cy - wh / 2)  # clamp rounding error
        box = (x0, y0, min(src.width, x0 + ww), min(src.height, y0 + wh))
        # resize with a float box: sub-pixel pan/zoom (no jitter), faster than transform().
        return src.resize((w, h), Image.Resampling.BILINEAR, box=box)

    def _caption(self, frame: Image.Image, panel: int, weight: float) -> None:
        if weight <= 0:
            return
        for piece in self.overlays[panel]:
            alpha = piece.alpha if weight >= 1 else piece.alpha.point(lambda v: v * weight)
            frame.paste(piece.rgb, piece.at, alpha)

    def frame(self, f: int) -> np.ndarray:
        """Frame `f` as an H×W×3 uint8 array."""
        m = self.timeline.at(f)
        if m.b is None:
            image = self._shot(m.a, f)
            self._caption(image, m.a, 1.0)
            return np.asarray(image)
        if self.inbetweens is not None:
            between = self.inbetweens[m.a]
            pick = between[min(len(between) - 1, m.step * len(between) // m.span)]
            image = cover(pick, *self.size)
        else:
            image = Image.blend(self._shot(m.a, f), self._shot(m.b, f), m.p)
        # The old caption fades out, then the new one fades in: two at once are unreadable.
        self._caption(image, m.a, 1 - 2 * m.p)
        self._caption(image, m.b, 2 * m.p - 1)
        return np.asarray(image)
