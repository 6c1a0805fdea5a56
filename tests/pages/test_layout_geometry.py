"""Geometry promises of every layout, for 1 to 40 panels, checked as properties."""

from __future__ import annotations

import math
from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from storyloom.generation.layout import (
    LAYOUTS,
    MIN_PANEL_PX,
    PagePanel,
    PageSpec,
    Rect,
    plan_pages,
    plan_story,
)
from storyloom.generation.pages.captions import load_font

specs = st.builds(
    PageSpec,
    title=st.sampled_from(["", "The Lighthouse"]),
    contributors=st.sampled_from([(), ("alice", "bob")]),
    layout=st.sampled_from(LAYOUTS),
    width=st.none() | st.integers(256, 4096),
    height=st.none() | st.integers(256, 4096),
    gutter=st.integers(0, 16),
    border=st.integers(0, 8),
    seed=st.integers(0, 2**32),
    panels_per_page=st.sampled_from([None, 1, 2, 3, 4]),
)


@settings(max_examples=300, deadline=None)
@given(count=st.integers(1, 40), spec=specs)
def test_every_panel_is_placed_once_inside_its_page_without_overlap(
    count: int, spec: PageSpec
) -> None:
    frames = plan_pages(count, spec)
    width, height = spec.size()
    page = Rect(0, 0, width, height)
    placed = [index for frame in frames for index, _ in frame.panels]
    assert placed == list(range(count))
    assert len(frames) == math.ceil(count / spec.per_page())
    for frame in frames:
        rects = [rect for _, rect in frame.panels]
        bands = [band for band in (frame.header, frame.footer) if band is not None]
        for rect in rects + bands:
            assert page.contains(rect)
        for rect in rects:
            assert min(rect.width, rect.height) >= MIN_PANEL_PX
        for a, b in combinations(rects + bands, 2):
            assert not a.overlaps(b), (a, b)


words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=40)
beats = st.builds(
    lambda narration, speaker, line: f'{narration} {speaker}: "{line}"' if line else narration,
    st.lists(words, max_size=30).map(" ".join),
    st.sampled_from(["Mira", "Bob", "Old Man"]),
    st.text(max_size=120).filter(lambda s: '"' not in s),
)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(beats, min_size=1, max_size=12), spec=specs)
def test_captions_and_their_text_stay_inside_their_panel(texts: list[str], spec: PageSpec) -> None:
    panels = [PagePanel.from_beat(text) for text in texts]
    for plan in plan_story(panels, spec):
        for (_, rect), boxes in zip(plan.frame.panels, plan.captions, strict=True):
            for box in boxes:
                assert rect.contains(box.rect)
                font = load_font(box.text.size)
                inner = box.rect.width - 2 * box.padding
                assert all(font.getlength(line) <= inner for line in box.text.lines)
                label_lines = 1 if box.kind == "bubble" else 0
                used = (len(box.text.lines) + label_lines) * box.text.line_height
                assert used + 2 * box.padding + box.tail <= box.rect.height
                assert load_font(box.text.size, True).getlength(box.speaker) <= inner
            for a, b in combinations([box.rect for box in boxes], 2):
                assert not a.overlaps(b)


@given(seed=st.integers(0, 2**32), count=st.integers(2, 40))
def test_classic_layout_is_the_same_for_the_same_story_seed(seed: int, count: int) -> None:
    spec = PageSpec(layout="classic", seed=seed)
    assert plan_pages(count, spec) == plan_pages(count, spec)


def test_classic_layout_varies_with_the_seed() -> None:
    layouts = {plan_pages(7, PageSpec(layout="classic", seed=seed))[0].panels for seed in range(8)}
    assert len(layouts) > 1


def _columns_and_rows(count: int, spec: PageSpec) -> tuple[int, int]:
    rects = [rect for _, rect in plan_pages(count, spec)[0].panels]
    return len({r.x0 for r in rects}), len({r.y0 for r in rects})


def test_grid_of_four_is_two_by_two_and_strip_is_one_row_and_vertical_one_column() -> None:
    assert _columns_and_rows(4, PageSpec(layout="grid", width=1024, height=1024)) == (2, 2)
    assert _columns_and_rows(4, PageSpec(layout="strip")) == (4, 1)
    assert _columns_and_rows(4, PageSpec(layout="vertical")) == (1, 4)


def test_a_long_story_continues_on_balanced_pages() -> None:
    frames = plan_pages(10, PageSpec(layout="grid"))
    assert [len(frame.panels) for frame in frames] == [5, 5]
    strip = plan_pages(9, PageSpec(layout="strip"))
    assert [len(frame.panels) for frame in strip] == [3, 3, 3]
