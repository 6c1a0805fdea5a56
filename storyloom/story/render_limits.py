"""Caps on one render job, checked when the job is asked for.

A job that would break a cap is refused with one sentence naming the limit before any row
is written or any GPU time is spent; the worker checks again before it starts (a job
queued before the operator lowered a cap), never after rendering.
"""

from __future__ import annotations

from dataclasses import dataclass

from storyloom.story.errors import LimitExceeded
from storyloom.story.model import JobKind

# How a clip is timed (the clip maker's defaults, so a request can be measured up front).
CLIP_SECONDS_PER_PANEL = 2.5
CLIP_FPS = 24


@dataclass(frozen=True)
class RenderLimits:
    """The operator's caps, and the render settings they are checked against."""

    max_panels: int = 32
    max_clip_seconds: float = 60.0
    max_clip_frames: int = 1440
    max_pixels: int = 1024 * 1024
    max_steps: int = 50
    # what this deployment renders (its settings), checked against the caps above
    width: int = 768
    height: int = 768
    steps: int = 30

    def check(self, kind: JobKind, panels: int) -> None:
        """Raise LimitExceeded naming the limit if a job of ``kind`` over ``panels`` beats
        may not be rendered."""
        if self.width * self.height > self.max_pixels:
            raise LimitExceeded(
                f"Panels of {self.width}×{self.height} exceed this server's limit of "
                f"{self.max_pixels:,} pixels; ask its operator to lower the panel size."
            )
        if self.steps > self.max_steps:
            raise LimitExceeded(
                f"{self.steps} denoising steps exceed this server's limit of {self.max_steps}; "
                "ask its operator to lower the steps."
            )
        if panels > self.max_panels:
            raise LimitExceeded(
                f"A job renders at most {self.max_panels} panels and this one asks for "
                f"{panels}; pick a range of at most {self.max_panels} beats."
            )
        if kind is JobKind.CLIP:
            self.check_clip(panels)

    def check_clip(self, panels: int) -> None:
        """Clip length and frame count of ``panels`` panels at the clip maker's timing."""
        seconds = panels * CLIP_SECONDS_PER_PANEL
        most = int(self.max_clip_seconds // CLIP_SECONDS_PER_PANEL)
        if seconds > self.max_clip_seconds:
            raise LimitExceeded(
                f"A clip lasts at most {self.max_clip_seconds:g} s and {panels} beats make "
                f"{seconds:g} s; pick at most {most} beats."
            )
        frames = round(seconds * CLIP_FPS)
        if frames > self.max_clip_frames:
            most = int(self.max_clip_frames // (CLIP_SECONDS_PER_PANEL * CLIP_FPS))
            raise LimitExceeded(
                f"A clip has at most {self.max_clip_frames} frames and {panels} beats make "
                f"{frames}; pick at most {most} beats."
            )
