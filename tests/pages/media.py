"""Test media helpers: seeded panel images and ffmpeg-based video inspection."""

from __future__ import annotations

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
