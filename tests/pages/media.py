"""Test media helpers: seeded panel images and ffmpeg-based video inspection."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image


def panel_image(seed: int, size: tuple[int, int] = (96, 80)) -> Image.Image:
    """A seeded image with a gradient and noise, so pan/zoom and crossfades change pixels."""
    rng = np.random.default_rng(seed)
    w, h = size
    x = np.linspace(0, 255, w)[None, :, None]
    y = np.linspace(0, 255, h)[:, None, None]
    base = np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2)
    noise = rng.integers(-30, 30, (h, w, 3))
    return Image.fromarray(np.clip(base + noise + seed * 40 % 200, 0, 255).astype(np.uint8))


@dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg reports about a video after decoding every frame."""

    codec: str
    pix_fmt: str
    width: int
    height: int
    duration: float
    frames: int


def probe(path: Path) -> VideoInfo:
    """Decode `path` with the ffmpeg imageio-ffmpeg ships (no ffprobe there) and parse it."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    cmd = [ffmpeg, "-hide_banner", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"]
    log = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    stream = re.search(r"Stream #0:0\S*: Video: (\w+).*?, (\w+)\(.*?, (\d+)x(\d+)", log)
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", log)
    frames = re.findall(r"frame=\s*(\d+)", log)
    assert stream and duration and frames, log
    h, m, s = duration.groups()
    return VideoInfo(
        codec=stream.group(1),
        pix_fmt=stream.group(2),
        width=int(stream.group(3)),
        height=int(stream.group(4)),
        duration=int(h) * 3600 + int(m) * 60 + float(s),
        frames=int(frames[-1]),
    )
