"""Renderer in-betweens: endpoints are the panels, frames move, identities are read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from storyloom.generation.inbetween import RendererMotion, render_inbetweens, slerp
from storyloom.generation.models import LoadedModel, load_pipeline
from storyloom.generation.motion import PanelFrame, collect_inbetweens
from storyloom.generation.renderer import (
    CharacterSpec,
    PanelSpec,
    RenderedPanel,
    RenderInputError,
    RenderSettings,
    StoryRenderer,
)

SMALL = RenderSettings(width=64, height=64, steps=3, guidance=5.0, max_batch=4)
CAST = {"Mira": CharacterSpec("Mira", "a girl with short red hair", seed=11)}
SCENES = ["[Mira] walks on a beach", "[Mira] climbs a lighthouse"]


@pytest.fixture(scope="module", params=["tiny-sdxl", "tiny-sd15"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_pipeline(request.param, cache_dir=tmp_path_factory.mktemp("models"))


def frames(rendered: list[RenderedPanel]) -> list[PanelFrame]:
    return [
        PanelFrame(i, p.image, SCENES[i], p.characters, p.seed, "") for i, p in enumerate(rendered)
    ]


def px(image: object) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_fractions_zero_and_one_reproduce_the_two_panels(
    loaded: LoadedModel, tmp_path: Path
) -> None:
    renderer = StoryRenderer(loaded, SMALL, tmp_path)
    panels = [PanelSpec(i, scene, ("Mira",)) for i, scene in enumerate(SCENES)]
    rendered = renderer.render_panels(panels, CAST, style="comic", seed=3)
    a, b = frames(rendered)
    start, end = render_inbetweens(renderer, a, b, [0.0, 1.0], CAST, "comic")
    assert np.abs(px(start) - px(rendered[0].image)).max() <= 2
    assert np.abs(px(end) - px(rendered[1].image)).max() <= 2


def test_inbetweens_are_distinct_frames_and_depend_on_the_identities(
    loaded: LoadedModel, tmp_path: Path
) -> None:
    renderer = StoryRenderer(loaded, SMALL, tmp_path)
    panels = [PanelSpec(i, scene, ("Mira",)) for i, scene in enumerate(SCENES)]
    a, b = frames(renderer.render_panels(panels, CAST, style="comic", seed=3))
    motion = RendererMotion(renderer, CAST, "comic")
    [between] = collect_inbetweens(motion, [a, b], 3)
    assert len(between) == 3
    for x, y in [(a.image, between[0]), (between[0], between[1]), (between[1], between[2])]:
        assert not np.array_equal(px(x), px(y))
    # the same frames without Mira's identity (nobody shown) come out different
    plain_a = PanelFrame(0, a.image, a.prompt, (), a.seed, "")
    plain_b = PanelFrame(1, b.image, b.prompt, (), b.seed, "")
    plain = render_inbetweens(renderer, plain_a, plain_b, [0.25], CAST, "comic")
    middle = render_inbetweens(renderer, a, b, [0.25], CAST, "comic")
    assert not np.array_equal(px(plain[0]), px(middle[0]))


def test_inbetweens_without_seeds_or_with_unknown_characters_are_refused(
    loaded: LoadedModel, tmp_path: Path
) -> None:
    renderer = StoryRenderer(loaded, SMALL, tmp_path)
    image = PanelSpec  # any placeholder object works: refused before rendering
    a = PanelFrame(0, image, "x", ("Mira",), None, "")  # type: ignore[arg-type]
    b = PanelFrame(1, image, "y", ("Zed",), 1, "")  # type: ignore[arg-type]
    with pytest.raises(RenderInputError, match="seeds"):
        render_inbetweens(renderer, a, b, [0.5], CAST, "comic")
    with pytest.raises(RenderInputError, match="unknown 'Zed'"):
        render_inbetweens(renderer, PanelFrame(0, image, "x", (), 1, ""), b, [0.5], CAST, "comic")  # type: ignore[arg-type]


def test_slerp_hits_both_ends_and_keeps_the_norm_of_gaussian_noise() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 16, 16, generator=g), torch.randn(4, 16, 16, generator=g)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    middle = slerp(a, b, 0.5)
    lerp = 0.5 * a + 0.5 * b
    # linear mixing shrinks the noise (norm ~0.71x); spherical keeps it
    assert abs(middle.norm() / a.norm() - 1) < 0.05
    assert lerp.norm() / a.norm() < 0.8
