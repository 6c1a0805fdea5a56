"""Identity scores on tiny random encoders, built offline and loaded like real ones."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from storyloom.generation.identity_eval import Encoders, score_story
from storyloom.generation.models import ModelLoadError


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> Encoders:
    return Encoders("tiny-clip", "tiny-dino", tmp_path_factory.mktemp("encoders"))


def noise(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))


def test_a_panel_identical_to_the_sheet_scores_one_and_others_score_less(
    encoders: Encoders,
) -> None:
    sheet, other = noise(1), noise(2)
    scores = score_story(
        encoders,
        {"Mira": sheet, "Tom": other},
        [
            (1, "[Mira] waves", ("Mira",), sheet),
            (2, "[Mira] runs", ("Mira",), sheet),
            (3, "[Mira] and [Tom] talk", ("Mira", "Tom"), other),
            (4, "a stormy sea", (), noise(3)),
        ],
    )
    mira, tom = scores.characters["Mira"], scores.characters["Tom"]
    assert (mira.panels, tom.panels) == (3, 1)
    # two of Mira's three panels are her sheet exactly; the third is not
    assert mira.clip_i_sheet == pytest.approx((2 + float(_cos(encoders, sheet, other))) / 3)
    assert tom.clip_i_sheet == pytest.approx(1.0) and tom.clip_i_panels is None
    assert mira.dino_sheet is not None and mira.dino_sheet < 1.0
    assert set(scores.clip_t) == {1, 2, 3, 4}
    assert all(-1.0 <= v <= 1.0 for v in scores.clip_t.values())


def _cos(encoders: Encoders, a: Image.Image, b: Image.Image) -> float:
    both = encoders.clip_images([a, b])
    return float(both[0] @ both[1])


def test_a_scoring_model_that_is_not_available_offline_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="could not load the scoring model") as error:
        Encoders("nobody/no-such-clip", "", tmp_path)
    assert "\n" not in str(error.value)
