"""Page and clip speed on this CPU.

    python benchmarks/pages.py --json storyloom-out/bench/pages.json

page_seconds: one 1024×1024 grid page of 6 panels (1024² images) with narration boxes and
speech bubbles, drawn from scratch (median of --repeat runs).
clip_seconds / clip_bytes: an 8-second 1280×720 24 fps MP4 of the same 6 panels with
pan/zoom, crossfades and captions, default settings (median time of --repeat runs).
Targets: page <= 0.5 s, clip <= 8 s and <= 8 MiB.

The panels are procedural stand-ins for rendered images: smooth gradients, soft shapes
and mild grain (sigma 6), seeded. Pure noise would be far harder to encode than any real
render; flat colour far easier. A heavy-grain run (sigma 30) is also reported, with no
target, as an upper bound for very detailed renders.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from report import load_line, machine, write_json

from storyloom.generation.clip import ClipSpec, MiB, build_clip
from storyloom.generation.layout import PagePanel, PageSpec, render_pages

T = TypeVar("T")
TARGET_PAGE_SECONDS = 0.5
TARGET_CLIP_SECONDS = 8.0
TARGET_CLIP_BYTES = 8 * MiB
BEATS = [
    '[Mira] finds a brass key in the sand. Mira: "What is this?"',
    "[Old Tom] rows out to the lighthouse as the sun goes down over the bay.",
    'Old Tom: "Careful with that key." [Mira]: "I am always careful."',
    "The lamp turns on by itself, and the gulls go quiet all at once.",
    'Gull: "Squawk!" Mira: "Shh!"',
    "They climb the spiral stairs, one hundred and twelve steps, counting every one.",
]


def panel(seed: int, size: int = 1024, grain: float = 6.0) -> Image.Image:
    """A seeded stand-in for a rendered panel (see the module docstring)."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, size)[:, None]
    top, bottom = rng.integers(40, 220, 3), rng.integers(40, 220, 3)
    sky = top[None, None, :] * (1 - y[..., None]) + bottom[None, None, :] * y[..., None]
    image = Image.fromarray(np.broadcast_to(sky, (size, size, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        cx, cy = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(30, size // 4))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(6))
    noise = rng.normal(0, grain, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))


def timed(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Median wall time of `repeat` calls, and the last result."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    panels = [PagePanel.from_beat(text, panel(i), author="bench") for i, text in enumerate(BEATS)]
    spec = PageSpec(title="The Lighthouse", contributors=("alice", "bob"), width=1024, height=1024)
    render_pages(panels, spec)  # load fonts and caches once, as a running worker has
    page_seconds, _ = timed(lambda: render_pages(panels, spec), max(args.repeat, 5))

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.mp4"
        clip_spec = ClipSpec(width=1280, height=720, fps=24, duration=8.0)
        clip_seconds, clip = timed(lambda: build_clip(panels, out, clip_spec), args.repeat)
        # Not a target: heavy grain (sigma 30) bounds what a very detailed render costs.
        grainy = [
            PagePanel(panel(i, grain=30.0), p.caption, p.dialogue) for i, p in enumerate(panels)
        ]
        grainy_seconds, grainy_clip = timed(lambda: build_clip(grainy, out, clip_spec), 1)

    rows = [
        ("page_seconds", page_seconds, TARGET_PAGE_SECONDS, page_seconds <= TARGET_PAGE_SECONDS),
        ("clip_seconds", clip_seconds, TARGET_CLIP_SECONDS, clip_seconds <= TARGET_CLIP_SECONDS),
        ("clip_MiB", clip.bytes / MiB, TARGET_CLIP_BYTES / MiB, clip.bytes <= TARGET_CLIP_BYTES),
    ]
    print(f"{'metric':<14}{'value':>10}{'target':>10}  ok")
    for name, value, target, ok in rows:
        print(f"{name:<14}{value:>10.3f}{target:>10.3f}  {'yes' if ok else 'NO'}")
    print(f"clip: {clip.width}×{clip.height}, {clip.frames} frames, {len(clip.attempts)} encode(s)")
    print(f"grainy panels (no target): {grainy_seconds:.3f} s, {grainy_clip.bytes / MiB:.3f} MiB")
    print(load_line())

    report = {
        "page_seconds": page_seconds,
        "clip_seconds": clip_seconds,
        "clip_bytes": clip.bytes,
        "clip": {"width": clip.width, "height": clip.height, "frames": clip.frames},
        "grainy_clip_seconds": grainy_seconds,
        "grainy_clip_bytes": grainy_clip.bytes,
        "targets": {
            "page_seconds": TARGET_PAGE_SECONDS,
            "clip_seconds": TARGET_CLIP_SECONDS,
            "clip_bytes": TARGET_CLIP_BYTES,
        },
        "ok": all(ok for *_, ok in rows),
        "repeat": args.repeat,
        "machine": machine(),
    }
    write_json(args.json, report)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
