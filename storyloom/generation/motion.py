"""Pluggable motion backends: in-between frames for consecutive panels of a clip.

Without a backend, `build_clip` holds each panel with a slow pan/zoom and crossfades to
the next. With one, the crossfade window between panel `a` and panel `b` shows the
backend's in-between frames instead, so the scene moves from one panel to the next.

Backends still to come (another engineer is writing the renderer they need):

- **Renderer in-betweens** (the default for `storyloom clip --motion`): interpolate the
  two panels' prompt embeddings and initial noise (from `PanelFrame.prompt` and
  `PanelFrame.seed`) and denoise each step in read-mode Consistent Self-Attention with
  the identities of `PanelFrame.characters`, so the characters keep their look while the
  scene moves. Runs on the tiny offline model in tests; the GPU path for real models.
- **Keyframe-to-video**: a diffusers first/last-frame pipeline (Wan FLF2V, LTX
  conditioning) conditioned on `a.image` and `b.image`, where the operator has the
  weights; chosen in the settings.

A backend is any object with a `name` and an `inbetweens` method (structural typing): no
base class to inherit, and tests use a hand-written fake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol, runtime_checkable

from PIL import Image


class MotionError(RuntimeError):
    """A motion backend broke its contract (wrong frame count, not an image)."""


@dataclass(frozen=True)
class PanelFrame:
    """What a backend knows about one panel: its image and how it was rendered."""

    index: int  # position in the story, 0-based
    image: Image.Image  # the panel as shown in the clip (a placeholder if it had none)
    prompt: str  # the prompt the panel was rendered from ("" if unknown)
    characters: tuple[str, ...]  # characters shown, whose locked identities a renderer reads
    seed: int | None  # the panel's render seed, to interpolate its initial noise
    caption: str  # the printed narration, for backends that condition on text


@runtime_checkable
class MotionBackend(Protocol):
    """Makes the frames that lead from one panel to the next."""

    name: str

    def inbetweens(self, a: PanelFrame, b: PanelFrame, count: int) -> list[Image.Image]:
        """Exactly `count` frames strictly between `a` and `b`, in order; any size, RGB.

        The clip builder scales them to the clip's size, calls this once per pair of
        consecutive panels before encoding, and reuses the frames if it re-encodes
        smaller to meet the size budget.
        """
        ...


def collect_inbetweens(
    backend: MotionBackend,
    frames: Sequence[PanelFrame],
    count: int,
    on_pair: Callable[[int, int], None] | None = None,
) -> list[list[Image.Image]]:
    """In-betweens for every consecutive pair of `frames`, checked against the contract.

    `on_pair(done, total)` is called after each pair, for progress reports.
    """
    out = []
    pairs = list(pairwise(frames))
    for a, b in pairs:
        images = backend.inbetweens(a, b, count)
        if len(images) != count or not all(isinstance(i, Image.Image) for i in images):
            raise MotionError(
                f"motion backend {backend.name!r} returned {len(images)} frames between panels "
                f"{a.index} and {b.index}; {count} images were asked for"
            )
        out.append([image.convert("RGB") for image in images])
        if on_pair is not None:
            on_pair(len(out), len(pairs))
    return out
