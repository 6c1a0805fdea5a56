"""Benign synthetic images, photo-like and drawn, for the real detector to pass."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 512


def _grid() -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE


def landscape(seed: int) -> Image.Image:
    """Sky, sun, hills and grass, with film grain."""
    rng = np.random.default_rng(seed)
    y, x = _grid()
    horizon = 0.55 + 0.08 * np.sin(x * 6 + seed)
    sky = np.stack([110 + 80 * y, 160 + 60 * y, 235 - 30 * y], -1)
    ground = np.stack([60 + 40 * y, 120 + 50 * (1 - y), 50 + 20 * y], -1)
    image = np.where((y > horizon)[..., None], ground, sky)
    sun = (x - 0.75) ** 2 + (y - 0.2) ** 2 < 0.005
    image[sun] = (255, 230, 150)
    image += rng.normal(0, 6, image.shape)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(1.5)
    )


def skin_gradient(seed: int) -> Image.Image:
    """Large soft areas in skin tones: what a naive skin detector would flag."""
    rng = np.random.default_rng(seed)
    y, x = _grid()
    tone = rng.uniform(0.4, 1.0)
    r = 150 + 90 * tone + 15 * np.sin(x * 7 + seed)
    g = 100 + 80 * tone + 15 * np.cos(y * 5)
    b = 70 + 70 * tone + 10 * np.sin((x + y) * 4)
    image = np.stack([r, g, b], -1) + rng.normal(0, 3, (SIZE, SIZE, 3))
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(6)
    )


def portrait(seed: int) -> Image.Image:
    """A clothed figure: head, shirt, arms, against a room."""
    rng = np.random.default_rng(seed)
    wall = tuple(int(v) for v in rng.integers(120, 220, 3))
    image = Image.new("RGB", (SIZE, SIZE), wall)
    draw = ImageDraw.Draw(image)
    skin = (224, 172, 140)
    shirt = tuple(int(v) for v in rng.integers(20, 200, 3))
    draw.rectangle((0, 400, SIZE, SIZE), fill=(90, 70, 50))  # floor
    draw.ellipse((196, 80, 316, 220), fill=skin)  # head
    draw.ellipse((226, 130, 240, 142), fill=(40, 30, 30))  # eyes
    draw.ellipse((272, 130, 286, 142), fill=(40, 30, 30))
    draw.arc((236, 160, 276, 190), 20, 160, fill=(120, 40, 40), width=4)  # mouth
    draw.rectangle((236, 215, 276, 240), fill=skin)  # neck
    draw.rounded_rectangle((160, 235, 352, 470), 40, fill=shirt)  # shirt
    draw.rounded_rectangle((120, 250, 165, 430), 20, fill=shirt)  # sleeves
    draw.rounded_rectangle((347, 250, 392, 430), 20, fill=shirt)
    draw.ellipse((118, 420, 166, 465), fill=skin)  # hands
    draw.ellipse((346, 420, 394, 465), fill=skin)
    return image.filter(ImageFilter.GaussianBlur(2))


def comic_panel(seed: int) -> Image.Image:
    """Flat colours, thick outlines and a speech bubble."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (SIZE, SIZE), (250, 245, 230))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = (int(v) for v in rng.integers(0, SIZE - 120, 2))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        draw.rectangle((x0, y0, x0 + 120, y0 + 90), fill=colour, outline=(0, 0, 0), width=5)
    draw.ellipse((300, 30, 490, 130), fill=(255, 255, 255), outline=(0, 0, 0), width=4)
    draw.text((330, 70), "Who is there?", fill=(0, 0, 0))
    return image


def noise(seed: int) -> Image.Image:
    """Pure noise, like a tiny model's panels."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8))


BENIGN = {
    f"{make.__name__}-{seed}": (make, seed)
    for make in (landscape, skin_gradient, portrait, comic_panel, noise)
    for seed in range(4)
}
