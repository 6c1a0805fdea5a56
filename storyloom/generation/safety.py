"""The image safety check: every panel and sheet image is looked at before it is posted.

The detector is NudeNet's (the `nudenet` wheel carries its 12 MB ONNX model and runs with
onnxruntime on the CPU, offline): it finds body parts, exposed or covered, with a score.
Why it: it installs from PyPI with its weights (no model hub), is small enough to run on
the worker beside the renderer (benchmarks/safety.py measures it), and reports labelled
parts, exposed or covered, so a clothed figure is not mistaken for a nude one.

A flagged image is handled by the job's level (story/server.SafetyLevel): `block` draws a
placeholder panel that says why, `blur` blurs it past recognition, `off` keeps it (allowed
only in age-restricted channels; the service decides that when the job is asked for). Any
other level, or a detector that cannot run, fails closed (`block`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# NudeNet's labels for exposed sexual body parts; faces, feet, bellies and anything covered
# are fine in any comic.
UNSAFE_LABELS = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)
# NudeNet reports parts from 0.2; its own demos treat about half as a real find. Lower
# blocks more benign skin (our synthetic "photos" stay clear of 0.45 by a wide margin).
DEFAULT_THRESHOLD = 0.45
MODEL_INPUT = 320  # 320n.onnx: the side NudeNet resizes every image to
PLACEHOLDER = "Panel hidden by this server's image safety check."
INSTALL_HINT = "the image safety check needs the 'safety' extra: pip install 'storyloom[safety]'"


@dataclass(frozen=True)
class Finding:
    """One unsafe part the detector found."""

    label: str
    score: float


class Detector(Protocol):
    def __call__(self, image: Image.Image) -> Sequence[Finding]:
        """The unsafe findings in an image (empty: nothing flagged)."""
        ...


class SafetyUnavailable(RuntimeError):
    """The detector cannot run here (not installed): jobs fail instead of posting unchecked."""


class NudeNetDetector:
    """NudeNet's ONNX detector, loaded once, safe to call from several threads."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        try:
            from nudenet import NudeDetector
        except ImportError as error:  # fail closed: no check, no post
            raise SafetyUnavailable(INSTALL_HINT) from error
        self.threshold = threshold
        self._model: Any = NudeDetector()
        self._lock = threading.Lock()  # one onnxruntime run at a time keeps memory flat

    def parts(self, image: Image.Image) -> list[Finding]:
        """Every part the model finds (faces, feet, covered or not), from its own floor."""
        # the model sees 320 px: shrink big panels first (a box filter, cheap and free of
        # the aliasing a single 1024 → 320 resize has)
        factor = max(image.size) // MODEL_INPUT
        small = image.reduce(factor) if factor > 1 else image
        bgr = np.ascontiguousarray(np.asarray(small.convert("RGB"))[:, :, ::-1])
        with self._lock:
            found = self._model.detect(bgr)
        return [Finding(d["class"], float(d["score"])) for d in found]

    def __call__(self, image: Image.Image) -> Sequence[Finding]:
        """Unsafe parts scored at or above the threshold."""
        return [
            f for f in self.parts(image) if f.label in UNSAFE_LABELS and f.score >= self.threshold
        ]


@dataclass(frozen=True)
class SafetyAction:
    """What the check did to one image: `blocked`, `blurred` or `allowed` (flagged, kept)."""

    what: str  # "panel 3", "sheet 1"
    action: str
    findings: tuple[Finding, ...]

    def describe(self) -> str:
        """The labels and scores, for the audit trail (no member text)."""
        found = ", ".join(f"{f.label.lower()} {f.score:.2f}" for f in self.findings)
        return f"{self.what}: {found}"


@dataclass
class ImageGuard:
    """Checks one job's images at its safety level and remembers what it did."""

    detector: Detector
    level: str = "block"
    actions: list[SafetyAction] = field(default_factory=list)
    checked: int = 0

    def check(self, image: Image.Image, what: str) -> Image.Image:
        """The image to post in place of `image`."""
        findings = tuple(self.detector(image))
        self.checked += 1
        if not findings:
            return image
        if self.level == "off":
            self.actions.append(SafetyAction(what, "allowed", findings))
            return image
        if self.level == "blur":
            self.actions.append(SafetyAction(what, "blurred", findings))
            return blurred(image)
        self.actions.append(SafetyAction(what, "blocked", findings))
        return placeholder(image.size)


def blurred(image: Image.Image) -> Image.Image:
    """Past recognition: pixelated to 12 blocks across, then blurred."""
    rgb = image.convert("RGB")
    small = rgb.resize((12, max(1, 12 * rgb.height // rgb.width)), Image.Resampling.BILINEAR)
    coarse = small.resize(rgb.size, Image.Resampling.NEAREST)
    return coarse.filter(ImageFilter.GaussianBlur(max(rgb.size) / 24))


def placeholder(size: tuple[int, int], text: str = PLACEHOLDER) -> Image.Image:
    """A grey panel of the same size that says why the picture is missing."""
    width, height = size
    panel = Image.new("RGB", size, (58, 58, 64))
    draw = ImageDraw.Draw(panel)
    font = ImageFont.load_default(size=max(8, width // 28))
    lines = _wrap(draw, text, font, width * 0.85)
    line_height = font.getbbox("Ag")[3] + 4
    top = (height - line_height * len(lines)) / 2
    for number, line in enumerate(lines):
        left = (width - draw.textlength(line, font=font)) / 2
        draw.text((left, top + number * line_height), line, fill=(235, 235, 235), font=font)
    return panel


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Any, width: float) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


_SHARED: list[Detector] = []
_SHARED_LOCK = threading.Lock()


def shared_detector() -> Detector:
    """This process's NudeNet detector, built on first use (a process that never renders
    never loads it; one that renders for many bots loads it once)."""
    with _SHARED_LOCK:
        if not _SHARED:
            _SHARED.append(NudeNetDetector())
        return _SHARED[0]
