"""Clips: MP4/WebP/GIF checked by decoding them, size budget, progress and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from storyloom.generation.clip import ClipError, ClipSpec, ClipTooLargeError, build_clip
from storyloom.generation.layout import EmptyStoryError, PagePanel

from .media import panel_image, probe

SMALL = ClipSpec(width=191, height=107, fps=10, seconds_per_panel=1.0, transition=0.4)


def test_mp4_is_inline_playable_h264(story_panels: list[PagePanel], tmp_path: Path) -> None:
    out = tmp_path / "story.mp4"
    result = build_clip(story_panels, out, SMALL)
    info = probe(out)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    assert (info.width, info.height) == (result.width, result.height) == (190, 106)  # even
    assert info.frames == result.frames == len(story_panels) * 10
    assert info.duration == pytest.approx(len(story_panels) * 1.0, abs=0.05)
    assert result.bytes == out.stat().st_size <= SMALL.budget_bytes
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: playable while loading


def test_duration_overrides_seconds_per_panel(tmp_path: Path) -> None:
    panels = [PagePanel.from_beat(f"beat {i}", panel_image(i)) for i in range(3)]
    result = build_clip(panels, tmp_path / "c.mp4", ClipSpec(width=128, height=72, duration=2.0))
    info = probe(result.path)
    assert info.frames == result.frames == 48
    assert info.duration == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize("fmt", ["webp", "gif"])
def test_animated_webp_and_gif_hold_every_frame(
    fmt: str, story_panels: list[PagePanel], tmp_path: Path
) -> None:
    spec = ClipSpec(width=128, height=72, fps=8, seconds_per_panel=0.5, transition=0.25)
    result = build_clip(story_panels, tmp_path / f"story.{fmt}", spec)
    with Image.open(result.path) as image:
        assert image.format == fmt.upper()
        assert image.is_animated and image.n_frames == result.frames == 16
        assert image.size == (result.width, result.height) == (128, 72)
    assert result.bytes == result.path.stat().st_size <= spec.budget_bytes


def test_a_tight_budget_lowers_the_resolution_until_it_fits(tmp_path: Path) -> None:
    panels = [PagePanel.from_beat(f"beat {i}", panel_image(i, (320, 240))) for i in range(4)]
    roomy = build_clip(panels, tmp_path / "roomy.gif", ClipSpec(width=320, height=180, fps=6))
    budget = roomy.bytes // 3
    spec = ClipSpec(width=320, height=180, fps=6, budget_bytes=budget)
    tight = build_clip(panels, tmp_path / "tight.gif", spec)
    assert len(tight.attempts) > 1 and tight.attempts[0].bytes > budget
    assert tight.width < roomy.width
    assert tight.bytes == tight.path.stat().st_size <= budget


def test_an_mp4_over_a_tiny_budget_is_re_encoded_smaller(tmp_path: Path) -> None:
    panels = [PagePanel.from_beat(f"beat {i}", panel_image(i, (320, 240))) for i in range(4)]
    spec = ClipSpec(width=640, height=360, seconds_per_panel=3, budget_bytes=16 * 1024)
    result = build_clip(panels, tmp_path / "tight.mp4", spec)
    assert len(result.attempts) > 1 and result.attempts[0].bytes > 16 * 1024
    assert result.width < 640
    assert result.bytes == result.path.stat().st_size <= 16 * 1024
    assert probe(result.path).frames == result.frames


def test_an_impossible_budget_is_a_clear_error_and_keeps_the_old_file(tmp_path: Path) -> None:
    panels = [PagePanel.from_beat("noise", panel_image(i, (200, 200))) for i in range(6)]
    out = tmp_path / "clip.gif"
    out.write_bytes(b"previous clip")
    spec = ClipSpec(width=160, height=160, fps=6, budget_bytes=16 * 1024)
    with pytest.raises(ClipTooLargeError, match="budget") as error:
        build_clip(panels, out, spec)
    assert "larger budget" in str(error.value)
    assert out.read_bytes() == b"previous clip"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.gif"]


def test_progress_rises_to_done(story_panels: list[PagePanel], tmp_path: Path) -> None:
    seen: list[tuple[float, str]] = []
    build_clip(story_panels, tmp_path / "p.mp4", SMALL, progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert len(seen) >= 3
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[0][1].startswith("encoding 190×106 mp4")
    assert seen[-1][1].startswith("clip ready")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ClipSpec(width=0), "clip width 0 is out of range; use 64–3840 px"),
        (ClipSpec(height=100_000), "clip height 100000 is out of range; use 64–3840 px"),
        (ClipSpec(fps=0), "clip fps 0 is out of range"),
        (ClipSpec(duration=10_000), "clip duration 10000 is out of range"),
        (ClipSpec(budget_bytes=10), "clip budget 10 is out of range"),
    ],
)
def test_bad_clip_settings_name_the_allowed_range(
    spec: ClipSpec, message: str, story_panels: list[PagePanel], tmp_path: Path
) -> None:
    with pytest.raises(ClipError, match=message):
        build_clip(story_panels, tmp_path / "x.mp4", spec)
    assert list(tmp_path.iterdir()) == []


def test_empty_story_and_unknown_file_type_are_refused(
    story_panels: list[PagePanel], tmp_path: Path
) -> None:
    with pytest.raises(EmptyStoryError):
        build_clip([], tmp_path / "x.mp4", SMALL)
    with pytest.raises(ClipError, match=r"name the file \.mp4, \.webp or \.gif"):
        build_clip(story_panels, tmp_path / "x.avi", SMALL)
    assert list(tmp_path.iterdir()) == []
