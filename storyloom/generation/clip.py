"""Animated clips from panels: MP4 (H.264), animated WebP or GIF, within a size budget.

Each panel is held with a slow pan/zoom and crossfades into the next (or shows a motion
backend's in-betweens, see `motion.py`), with captions overlaid. MP4 is what Discord
and Slack play inline: H.264, `yuv420p`, even dimensions, `+faststart`, written through
moviepy 2 and the ffmpeg that imageio-ffmpeg ships. WebP and GIF are written by Pillow
(moviepy has no WebP writer, and its GIF writer goes through Pillow anyway).

A clip is encoded, measured and, while it is over the budget, encoded again smaller
(lower resolution, frame rate, bitrate or quality) — never handed back over the limit.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
from moviepy import VideoClip
from PIL import Image

from storyloom.generation.motion import MotionBackend, PanelFrame, collect_inbetweens
from storyloom.generation.mp4_ladder import INLINE_H264, SCALES, max_bitrate, rungs
from storyloom.generation.pages.captions import printable
from storyloom.generation.pages.draw import placeholder
from storyloom.generation.pages.frames import FrameMaker, Timeline
from storyloom.generation.pages.model import EmptyStoryError, PagePanel
from storyloom.story.render_limits import CLIP_FPS, CLIP_SECONDS_PER_PANEL

ClipFormat = Literal["mp4", "webp", "gif"]
CLIP_FORMATS: tuple[ClipFormat, ...] = ("mp4", "webp", "gif")
MiB = 1024 * 1024
DEFAULT_BUDGET = 10 * MiB  # Discord's default bot upload limit
ProgressCallback = Callable[[float, str], None]
# Each rung (mp4_ladder.py) shrinks the frame; MP4 lowers its bitrate cap, WebP/GIF drop
# quality and frame rate.


class ClipError(ValueError):
    """A clip cannot be made from these inputs; the message says what to change."""


class ClipTooLargeError(ClipError):
    """Even the smallest encoding is over the size budget."""


@dataclass(frozen=True)
class ClipSpec:
    """Size, timing, motion and budget of a clip."""

    width: int = 1280
    height: int = 720
    fps: int = CLIP_FPS
    seconds_per_panel: float = CLIP_SECONDS_PER_PANEL
    duration: float | None = None  # total seconds; overrides seconds_per_panel
    transition: float = 0.6  # seconds of crossfade (or in-betweens) per cut
    zoom: float = 0.08  # how far the slow zoom goes over a panel's hold
    captions: bool = True
    budget_bytes: int = DEFAULT_BUDGET
    crf: int = 23  # x264 quality; the budget's bitrate cap still applies
    preset: str = "superfast"  # x264 speed; within the budget, speed matters more than bytes

    def validate(self, panels: int) -> None:
        """Raise ClipError naming the allowed range if a setting is out of range."""
        checks = [
            ("width", self.width, 64, 3840, "px"),
            ("height", self.height, 64, 3840, "px"),
            ("fps", self.fps, 1, 60, "frames/s"),
            ("seconds per panel", self.seconds_per_panel, 0.2, 60, "s"),
            ("duration", self.total_seconds(panels), 0.5, 600, "s"),
            ("zoom", self.zoom, 0.0, 1.0, ""),
            ("transition", self.transition, 0.0, 10.0, "s"),
            ("budget", self.budget_bytes, 16 * 1024, 1024 * MiB, "bytes"),
        ]
        for name, value, low, high, unit in checks:
            if not low <= value <= high:
                raise ClipError(f"clip {name} {value} is out of range; use {low}–{high} {unit}")

    def total_seconds(self, panels: int) -> float:
        """Clip length in seconds."""
        return self.duration if self.duration is not None else self.seconds_per_panel * panels


@dataclass(frozen=True)
class Attempt:
    """One encoding tried while fitting the budget."""

    width: int
    height: int
    fps: int
    bytes: int


@dataclass(frozen=True)
class ClipResult:
    """The written clip: where, how big, and every encoding tried to get there."""

    path: Path
    format: ClipFormat
    bytes: int
    width: int
    height: int
    fps: int
    frames: int
    seconds: float
    attempts: tuple[Attempt, ...]


def _clip_format(path: Path) -> ClipFormat:
    suffix = path.suffix.lower().lstrip(".")
    for fmt in CLIP_FORMATS:
        if suffix == fmt:
            return fmt
    raise ClipError(f"unknown clip type {path.suffix!r}; name the file .mp4, .webp or .gif")


FrameFn = Callable[[int], np.ndarray]


def _encode_mp4(
    frame: FrameFn, frames: int, fps: int, spec: ClipSpec, rung: int, tmp: Path
) -> None:
    maxrate = max_bitrate(spec.budget_bytes, frames / fps, rung)
    # moviepy writes int(duration × fps) frames; half a frame of slack keeps the count exact.
    clip = VideoClip(
        lambda t: frame(min(frames - 1, round(t * fps))), duration=(frames + 0.5) / fps
    )
    clip.write_videofile(
        str(tmp),
        fps=fps,
        codec="libx264",
        audio=False,
        preset=spec.preset,
        logger=None,
        ffmpeg_params=[
            *("-crf", str(spec.crf), "-maxrate", str(maxrate), "-bufsize", str(maxrate)),
            *INLINE_H264,
        ],
    )
    clip.close()


def _encode_pillow(
    frame: FrameFn, frames: int, fps: int, fmt: ClipFormat, quality: int, fh: BinaryIO
) -> None:
    images = [Image.fromarray(frame(f)) for f in range(frames)]
    if fmt == "gif":
        # One adaptive palette per frame: clips change colour from panel to panel.
        images = [im.quantize(256, method=Image.Quantize.FASTOCTREE) for im in images]
    first, *rest = images
    options = {"quality": quality, "method": 4} if fmt == "webp" else {}
    first.save(
        fh,
        fmt.upper(),
        save_all=True,
        append_images=rest,
        duration=round(1000 / fps),
        loop=0,
        **options,
    )


def _encode_once(
    frame: FrameFn, frames: int, fps: int, spec: ClipSpec, fmt: ClipFormat, rung: int, out: Path
) -> int:
    """Encode to a temp file beside `out`; rename it over `out` only if it fits the budget."""
    # ffmpeg picks the container from the extension, so the temp name keeps it.
    tmp = out.with_name(f".{out.stem}.{secrets.token_hex(4)}.part.{fmt}")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if fmt == "mp4":
            _encode_mp4(frame, frames, fps, spec, rung, tmp)
        else:
            with tmp.open("wb") as fh:
                _encode_pillow(frame, frames, fps, fmt, max(30, 80 - 15 * rung), fh)
        size = tmp.stat().st_size
        if size <= spec.budget_bytes:
            os.replace(tmp, out)
        return size
    finally:
        tmp.unlink(missing_ok=True)


def _reporting(maker: FrameMaker, report: ProgressCallback, done: float, label: str) -> FrameFn:
    """`maker.frame`, reporting progress from `done` towards 1 as frames are made."""
    frames = maker.timeline.frames

    def frame(f: int) -> np.ndarray:
        if f % 12 == 0:  # twice a second of 24 fps video is plenty for a status line
            report(done + (1 - done) * 0.95 * f / frames, label)
        return maker.frame(f)

    return frame


def _panel_frames(panels: Sequence[PagePanel]) -> list[PanelFrame]:
    return [
        PanelFrame(
            index=i,
            image=p.image if p.image is not None else placeholder(512, 512),
            prompt=p.prompt,
            characters=p.characters,
            seed=p.seed,
            caption=printable(p.caption),
        )
        for i, p in enumerate(panels)
    ]


def build_clip(
    panels: Sequence[PagePanel],
    out_path: Path,
    spec: ClipSpec = ClipSpec(),
    *,
    motion: MotionBackend | None = None,
    progress: ProgressCallback | None = None,
) -> ClipResult:
    """Write a clip of `panels` to `out_path` (.mp4/.webp/.gif) within `spec.budget_bytes`.

    Raises EmptyStoryError, ClipError for bad settings, ClipTooLargeError when no
    encoding fits; the file at `out_path` is only ever replaced by a complete clip.
    """
    report = progress or (lambda fraction, message: None)
    if not panels:
        raise EmptyStoryError("the story has no panels yet; add a beat before making a clip")
    out_path = Path(out_path)
    fmt = _clip_format(out_path)
    spec.validate(len(panels))
    seconds = spec.total_seconds(len(panels))
    share = 0.0
    inbetweens = None
    if motion is not None:
        share = 0.4  # rendering in-betweens is the slow part of a motion clip
        count = max(1, round(spec.transition * spec.fps))
        inbetweens = collect_inbetweens(
            motion,
            _panel_frames(panels),
            count,
            lambda done, total: report(share * done / total, f"in-betweens {done}/{total}"),
        )
    attempts: list[Attempt] = []
    # GIF is ~10× larger than H.264 per pixel: start it small and slow.
    fps = min(spec.fps, 12) if fmt == "gif" else spec.fps
    first = min(1.0, 480 / spec.width) if fmt == "gif" else 1.0
    for rung, width, height in rungs(spec.width, spec.height, first):
        frames = max(1, round(seconds * fps))
        timeline = Timeline.build(len(panels), frames, round(spec.transition * fps))
        maker = FrameMaker(
            panels,
            (width, height),
            timeline,
            zoom=spec.zoom,
            captions=spec.captions,
            inbetweens=inbetweens,
        )
        done = share + (1 - share) * rung / len(SCALES)
        label = f"encoding {width}×{height} {fmt}" + (f" (try {rung + 1})" if rung else "")
        report(done, label)
        frame = _reporting(maker, report, done, label)
        size = _encode_once(frame, frames, fps, spec, fmt, rung, out_path)
        attempts.append(Attempt(width, height, fps, size))
        if size <= spec.budget_bytes:
            report(1.0, f"clip ready: {size / MiB:.2f} MiB")
            return ClipResult(
                out_path, fmt, size, width, height, fps, frames, frames / fps, tuple(attempts)
            )
        if fmt != "mp4":
            fps = max(6, fps * 3 // 4)
    tried = ", ".join(f"{a.width}×{a.height}: {_human(a.bytes)}" for a in attempts)
    advice = "fewer panels, a shorter clip, " + ("" if fmt == "mp4" else "MP4, ")
    raise ClipTooLargeError(
        f"no {fmt} encoding fits the {_human(spec.budget_bytes)} budget (tried {tried}); "
        f"use {advice}or a larger budget"
    )


def _human(size: int) -> str:
    return f"{size / MiB:.2f} MiB" if size >= MiB else f"{size / 1024:.1f} KiB"
