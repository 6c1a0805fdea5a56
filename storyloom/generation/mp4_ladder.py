"""The MP4 shrink ladder: how a video is made smaller until it fits a byte budget.

Used when a clip is first encoded (generation/clip.py, through moviepy) and when a
finished MP4 is re-encoded for a channel's upload limit (bot/discord/fit.py, raw ffmpeg).
Each rung is a smaller frame and a lower bitrate cap: x264 overshoots a cap, and a smaller
frame alone may not fit a tiny budget. Plain arithmetic: importing it loads no encoder.
"""

from __future__ import annotations

from collections.abc import Iterator

SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)  # of the full width and height, tried in order
MIN_SIDE = 64  # a video smaller than this is not worth posting
# What Discord and Slack play inline: 4:2:0 chroma, the index at the front of the file.
INLINE_H264 = ("-pix_fmt", "yuv420p", "-movflags", "+faststart")


def even(value: float) -> int:
    """A frame side H.264 with 4:2:0 chroma accepts: even, at least 2."""
    return max(2, int(value) // 2 * 2)


def rungs(width: int, height: int, first: float = 1.0) -> Iterator[tuple[int, int, int]]:
    """(rung, width, height) of each try, `first` scaling the whole ladder; it ends before
    a frame whose shorter side would be under MIN_SIDE."""
    for rung, scale in enumerate(s * first for s in SCALES):
        w, h = even(width * scale), even(height * scale)
        if min(w, h) < MIN_SIDE:
            return
        yield rung, w, h


def max_bitrate(budget_bytes: int, seconds: float, rung: int) -> int:
    """The bitrate cap (bits per second) of a `seconds` long video on rung `rung`: the whole
    video within the budget with 15 % left for the container, 20 % lower on each rung."""
    return int(budget_bytes * 8 * 0.85 * 0.8**rung / seconds)
