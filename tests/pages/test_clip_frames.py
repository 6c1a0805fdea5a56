"""Clip frames: timeline of holds and transitions, pan/zoom, captions, motion backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from storyloom.generation.clip import ClipSpec, build_clip
from storyloom.generation.layout import PagePanel
from storyloom.generation.motion import MotionBackend, MotionError, PanelFrame
from storyloom.generation.pages.frames import FrameMaker, Timeline

from .media import panel_image, probe


@given(panels=st.integers(1, 40), per_panel=st.integers(1, 60), transition=st.integers(0, 40))
def test_the_timeline_shows_every_panel_in_order(
    panels: int, per_panel: int, transition: int
) -> None:
    timeline = Timeline.build(panels, panels * per_panel, transition)
    moments = [timeline.at(f) for f in range(timeline.frames)]
    shown = [m.b if m.b is not None and m.p >= 0.5 else m.a for m in moments]
    assert shown == sorted(shown) and set(shown) == set(range(panels))
    for m in moments:
        if m.b is not None:
            assert m.b == m.a + 1 and 0 < m.p < 1 and 0 <= m.step < m.span
    blended = sum(m.b is not None for m in moments)
    assert blended == (panels - 1) * 2 * timeline.half <= (panels - 1) * transition


def _maker(panels: list[PagePanel], captions: bool, **kw: object) -> FrameMaker:
    timeline = Timeline.build(len(panels), 20 * len(panels), 8)
    return FrameMaker(panels, (160, 90), timeline, zoom=0.1, captions=captions, **kw)  # type: ignore[arg-type]


def test_each_panel_is_held_with_a_slow_pan_and_zoom() -> None:
    maker = _maker([PagePanel(panel_image(0, (320, 240)))], captions=False)
    first, last = (maker.frame(f).astype(int) for f in (0, 19))
    step = np.abs(maker.frame(1).astype(int) - first).mean()
    assert np.abs(last - first).mean() > 3 * step > 0  # it moves, and slowly


def test_panels_crossfade(story_panels: list[PagePanel]) -> None:
    maker = _maker(story_panels[:2], captions=False)
    cut = maker.timeline.bounds[1]
    before, mid, after = (maker.frame(f).astype(int) for f in (cut - 5, cut, cut + 4))
    assert np.abs(mid - before).mean() > 5 and np.abs(mid - after).mean() > 5


def test_captions_are_overlaid_without_tags(story_panels: list[PagePanel]) -> None:
    plain, captioned = _maker(story_panels, False), _maker(story_panels, True)
    assert not np.array_equal(plain.frame(5), captioned.frame(5))
    printed = [t.text for t in captioned.texts]
    assert "What is this?" in printed and "Mira" in printed
    assert not any("[" in text for text in printed)


class SolidBackend:
    """A fake motion backend: in-betweens of one flat colour, and a log of its calls."""

    name = "solid"

    def __init__(self, colour: tuple[int, int, int], extra: int = 0) -> None:
        self.colour, self.extra = colour, extra
        self.calls: list[tuple[PanelFrame, PanelFrame, int]] = []

    def inbetweens(self, a: PanelFrame, b: PanelFrame, count: int) -> list[Image.Image]:
        self.calls.append((a, b, count))
        return [Image.new("RGB", (64, 48), self.colour) for _ in range(count + self.extra)]


def test_a_motion_backend_fills_each_transition(tmp_path: Path) -> None:
    panels = [
        PagePanel.from_beat(
            f"[Mira] step {i}", panel_image(i), prompt=f"p{i}", seed=i, characters=("Mira",)
        )
        for i in range(3)
    ]
    backend = SolidBackend((250, 0, 250))
    assert isinstance(backend, MotionBackend)
    spec = ClipSpec(width=128, height=72, fps=10, seconds_per_panel=1.0, transition=0.4)
    result = build_clip(panels, tmp_path / "m.mp4", spec, motion=backend)
    assert [(a.index, b.index, n) for a, b, n in backend.calls] == [(0, 1, 4), (1, 2, 4)]
    a, b, _ = backend.calls[0]
    assert (a.prompt, a.seed, a.characters, b.prompt) == ("p0", 0, ("Mira",), "p1")
    assert probe(result.path).frames == result.frames == 30

    maker = _maker(panels, False, inbetweens=[[Image.new("RGB", (8, 8), (250, 0, 250))] * 4] * 2)
    mid = maker.frame(maker.timeline.bounds[1])
    assert tuple(mid[45, 80]) == (250, 0, 250)


def test_a_backend_that_breaks_its_contract_is_named(tmp_path: Path) -> None:
    panels = [PagePanel(panel_image(i)) for i in range(2)]
    spec = ClipSpec(width=128, height=72, fps=10, seconds_per_panel=1.0, transition=0.4)
    with pytest.raises(MotionError, match=r"'solid' returned 5 frames .* 4 images"):
        build_clip(panels, tmp_path / "m.mp4", spec, motion=SolidBackend((0, 0, 0), extra=1))
    assert list(tmp_path.iterdir()) == []
