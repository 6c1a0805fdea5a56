"""The image check: the real detector passes ordinary images; a flag (through the detector
seam) blocks, blurs or keeps the image as the job's level says."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

from storyloom.generation.safety import (
    PLACEHOLDER,
    Finding,
    ImageGuard,
    NudeNetDetector,
    placeholder,
    shared_detector,
)

from .images import BENIGN


class FlagsEverything:
    """The detector seam: every image is flagged (no explicit images live in this repo)."""

    def __init__(self) -> None:
        self.seen = 0

    def __call__(self, image: Image.Image) -> Sequence[Finding]:
        self.seen += 1
        return [Finding("FEMALE_BREAST_EXPOSED", 0.91)]


@pytest.fixture(scope="module")
def nudenet() -> NudeNetDetector:
    detector = shared_detector()
    assert isinstance(detector, NudeNetDetector)
    return detector


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_the_real_detector_passes_benign_images(nudenet: NudeNetDetector, name: str) -> None:
    make, seed = BENIGN[name]
    assert list(nudenet(make(seed))) == []


def test_the_real_detector_passes_its_own_placeholder_and_a_blank_panel(
    nudenet: NudeNetDetector,
) -> None:
    assert list(nudenet(placeholder((768, 768)))) == []
    assert list(nudenet(Image.new("RGB", (64, 64), "white"))) == []


def test_the_real_detector_sees_a_drawn_face_and_flags_nothing(nudenet: NudeNetDetector) -> None:
    """The model reads the images above: it finds the portraits' faces (a safe part), so
    those tests do not pass because nothing was seen."""
    make, seed = BENIGN["portrait-3"]
    image = make(seed)
    assert any(part.label.startswith("FACE_") for part in nudenet.parts(image))
    assert list(nudenet(image)) == []


def test_block_replaces_a_flagged_panel_with_a_placeholder_of_the_same_size() -> None:
    guard = ImageGuard(FlagsEverything(), "block")
    drawn = BENIGN["landscape-0"][0](0)
    shown = guard.check(drawn, "panel 2")
    assert shown.size == drawn.size
    assert np.array_equal(np.asarray(shown), np.asarray(placeholder(drawn.size)))
    [action] = guard.actions
    assert (action.what, action.action) == ("panel 2", "blocked")
    assert "female_breast_exposed 0.91" in action.describe()


def test_blur_hides_the_detail_of_a_flagged_panel() -> None:
    guard = ImageGuard(FlagsEverything(), "blur")
    drawn = BENIGN["comic_panel-1"][0](1)
    shown = np.asarray(guard.check(drawn, "panel 1")).astype(np.float32)
    original = np.asarray(drawn).astype(np.float32)
    # neighbouring pixels barely differ once blurred; the drawing's edges are gone
    assert np.abs(np.diff(shown, axis=1)).mean() < np.abs(np.diff(original, axis=1)).mean() / 5
    assert guard.actions[0].action == "blurred"


def test_off_keeps_a_flagged_panel_and_says_so() -> None:
    guard = ImageGuard(FlagsEverything(), "off")
    drawn = BENIGN["portrait-0"][0](0)
    assert guard.check(drawn, "sheet 1") is drawn
    assert guard.actions[0].action == "allowed"


def test_an_unknown_level_fails_closed() -> None:
    guard = ImageGuard(FlagsEverything(), "sideways")
    drawn = BENIGN["portrait-1"][0](1)
    assert np.array_equal(
        np.asarray(guard.check(drawn, "panel 1")), np.asarray(placeholder(drawn.size))
    )


def test_an_unflagged_panel_is_posted_as_drawn() -> None:
    guard = ImageGuard(lambda image: [], "block")
    drawn = BENIGN["noise-0"][0](0)
    assert guard.check(drawn, "panel 1") is drawn
    assert guard.actions == []


def test_the_placeholder_says_why() -> None:
    assert "safety" in PLACEHOLDER
    panel = np.asarray(placeholder((256, 256)))
    assert (panel > 200).any()  # the sentence is drawn in light letters on grey
