"""The one MP4 shrink ladder that clip encoding and upload fitting both climb down."""

from __future__ import annotations

import itertools

from storyloom.generation.mp4_ladder import MIN_SIDE, SCALES, max_bitrate, rungs


def test_each_rung_is_smaller_and_even_and_the_ladder_stops_above_the_smallest_side() -> None:
    ladder = list(rungs(1280, 720))
    assert [r for r, _, _ in ladder] == list(range(len(SCALES)))  # 720·0.25 = 180 ≥ 64
    assert all(w % 2 == 0 and h % 2 == 0 for _, w, h in ladder)
    assert all(a[1] > b[1] and a[2] > b[2] for a, b in itertools.pairwise(ladder))

    small = list(rungs(301, 200))  # 200·0.35 = 70 fits, 200·0.25 = 50 does not
    assert [(w, h) for _, w, h in small] == [(300, 200), (224, 150), (150, 100), (104, 70)]
    assert min(small[-1][1:]) >= MIN_SIDE


def test_a_scaled_ladder_starts_smaller() -> None:
    assert next(rungs(1280, 720, first=0.375)) == (0, 480, 270)


def test_the_bitrate_cap_leaves_room_for_the_container_and_drops_on_every_rung() -> None:
    budget, seconds = 10 * 1024 * 1024, 12.0
    caps = [max_bitrate(budget, seconds, rung) for rung in range(len(SCALES))]
    assert caps[0] * seconds / 8 <= budget * 0.85
    assert caps == sorted(caps, reverse=True) and len(set(caps)) == len(caps)
    assert max_bitrate(budget, 2 * seconds, 0) == caps[0] // 2
