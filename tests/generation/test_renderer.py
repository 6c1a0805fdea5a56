"""StoryRenderer on the tiny offline models: relations, not hard-coded numbers."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from storyloom.generation.accounting import store_bytes, unet_csa_layers
from storyloom.generation.identity_store import IdentityStore, StoreMismatchError
from storyloom.generation.models import LoadedModel, load_pipeline
from storyloom.generation.renderer import (
    CharacterSpec,
    PanelSpec,
    RenderCancelled,
    RenderInputError,
    RenderSettings,
    StoryRenderer,
)
from storyloom.generation.styles import get_style

SMALL = RenderSettings(width=64, height=64, steps=3, guidance=5.0, max_batch=4)
MIRA = CharacterSpec("Mira", "a girl with short red hair", seed=11)
TOM = CharacterSpec("Tom", "an old man with a white beard", seed=12)
CAST = {"Mira": MIRA, "Tom": TOM}


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def sdxl(model_cache: Path) -> LoadedModel:
    return load_pipeline("tiny-sdxl", cache_dir=model_cache)


@pytest.fixture(scope="module")
def sd15(model_cache: Path) -> LoadedModel:
    return load_pipeline("tiny-sd15", cache_dir=model_cache)


@pytest.fixture
def renderer(sdxl: LoadedModel, tmp_path: Path) -> StoryRenderer:
    return StoryRenderer(sdxl, SMALL, tmp_path / "stores")


def pixels(image: object) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def same(a: object, b: object) -> bool:
    return np.array_equal(pixels(a), pixels(b))


def four_panels() -> list[PanelSpec]:
    return [
        PanelSpec(1, "[Mira] walks on a beach", ("Mira",)),
        PanelSpec(2, "[Mira] and [Tom] talk", ("Mira", "Tom")),
        PanelSpec(3, "[Tom] lights a lamp", ("Tom",)),
        PanelSpec(4, "a stormy sea"),
    ]


def stock_images(loaded: LoadedModel, scenes: list[str], seeds: list[int]) -> list[object]:
    style = get_style("comic")
    return loaded.pipeline(  # type: ignore[operator,no-any-return]
        prompt=[style.apply(scene) for scene in scenes],
        negative_prompt=[style.negative] * len(scenes),
        num_inference_steps=SMALL.steps,
        guidance_scale=SMALL.guidance,
        width=SMALL.width,
        height=SMALL.height,
        generator=[torch.Generator().manual_seed(seed) for seed in seeds],
        output_type="pil",
    ).images


@pytest.mark.parametrize("family", ["sdxl", "sd15"])
def test_panels_without_characters_equal_the_stock_pipeline_bit_for_bit(
    family: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    loaded: LoadedModel = request.getfixturevalue(family)
    renderer = StoryRenderer(loaded, SMALL, tmp_path)
    panels = [PanelSpec(1, "an empty lighthouse"), PanelSpec(2, "a stormy sea")]
    ours = renderer.render_panels(panels, CAST, style="comic", seed=5)
    stock = stock_images(loaded, [p.scene for p in panels], [p.seed for p in ours])
    assert all(same(a.image, b) for a, b in zip(ours, stock, strict=True))


def test_an_empty_panel_batched_with_csa_panels_matches_the_stock_pipeline(
    sdxl: LoadedModel, tmp_path: Path
) -> None:
    renderer = StoryRenderer(sdxl, SMALL, tmp_path)
    panels = [PanelSpec(1, "[Mira] waves", ("Mira",)), PanelSpec(2, "an empty lighthouse")]
    ours = renderer.render_panels(panels, CAST, style="comic", seed=5)[1]
    # batch shape differs from a lone stock call, so equal up to float rounding
    [stock] = stock_images(sdxl, ["an empty lighthouse"], [ours.seed])
    assert np.abs(pixels(ours.image) - pixels(stock)).max() <= 2


def test_consistent_attention_changes_panels_that_show_a_character(
    renderer: StoryRenderer,
) -> None:
    with_csa = renderer.render_panels(
        [PanelSpec(1, "[Mira] waves", ("Mira",))], CAST, style="comic", seed=5
    )
    # the same prompt, rendered as a panel that shows nobody: plain attention
    renderer.lock_character(MIRA, "comic")
    plain = renderer.render_panels([PanelSpec(1, "[Mira] waves")], CAST, style="comic", seed=5)
    assert not same(with_csa[0].image, plain[0].image)


def test_same_spec_and_seed_give_identical_panels_and_a_reroll_changes_only_its_panel(
    renderer: StoryRenderer,
) -> None:
    first = renderer.render_panels(four_panels(), CAST, style="comic", seed=9)
    again = renderer.render_panels(four_panels(), CAST, style="comic", seed=9)
    assert all(same(a.image, b.image) for a, b in zip(first, again, strict=True))

    rerolled = four_panels()
    rerolled[2] = dataclasses.replace(rerolled[2], variant=1)
    third = renderer.render_panels(rerolled, CAST, style="comic", seed=9)
    assert [same(a.image, b.image) for a, b in zip(first, third, strict=True)] == [
        True,
        True,
        False,
        True,
    ]


def test_a_batch_renders_the_same_panels_as_one_by_one(sdxl: LoadedModel, tmp_path: Path) -> None:
    batched = StoryRenderer(sdxl, SMALL, tmp_path)
    single = StoryRenderer(sdxl, dataclasses.replace(SMALL, max_batch=1), tmp_path)
    a = batched.render_panels(four_panels(), CAST, style="comic", seed=3)
    b = single.render_panels(four_panels(), CAST, style="comic", seed=3)
    for x, y in zip(a, b, strict=True):
        assert np.abs(pixels(x.image) - pixels(y.image)).max() <= 2


def test_a_store_loaded_in_a_fresh_process_gives_identical_panels(
    renderer: StoryRenderer, model_cache: Path, tmp_path: Path
) -> None:
    panels = four_panels()[:2]
    here = renderer.render_panels(panels, CAST, style="comic", seed=4)
    store_dir = renderer.store_dir
    assert store_dir is not None and len(list(store_dir.glob("*.safetensors"))) == 2
    out = tmp_path / "fresh"
    # the same intra-op threads as this process (conftest: 1): CPU kernels may round
    # differently with another thread count (up to 1 level in a pixel, measured)
    script = f"""
import json, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from storyloom.generation.models import load_pipeline
from storyloom.generation.renderer import StoryRenderer, RenderSettings, CharacterSpec, PanelSpec
loaded = load_pipeline("tiny-sdxl", cache_dir=Path({str(model_cache)!r}))
settings = RenderSettings(**{json.dumps(dataclasses.asdict(SMALL))})
r = StoryRenderer(loaded, settings, Path({str(store_dir)!r}))
def no_rebuild(*a, **k):
    raise SystemExit("the store was rebuilt instead of loaded")
r._write = no_rebuild
cast = {{"Mira": CharacterSpec("Mira", {MIRA.description!r}, {MIRA.seed}),
         "Tom": CharacterSpec("Tom", {TOM.description!r}, {TOM.seed})}}
panels = [PanelSpec(1, "[Mira] walks on a beach", ("Mira",)),
          PanelSpec(2, "[Mira] and [Tom] talk", ("Mira", "Tom"))]
out = Path({str(out)!r}); out.mkdir()
for p in r.render_panels(panels, cast, style="comic", seed=4):
    p.image.save(out / f"{{p.index}}.png")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    from PIL import Image

    for panel in here:
        assert same(panel.image, Image.open(out / f"{panel.index}.png").convert("RGB"))


def test_a_missing_store_is_rebuilt_identically_from_its_spec(
    sdxl: LoadedModel, tmp_path: Path
) -> None:
    first = StoryRenderer(sdxl, SMALL, tmp_path / "a").lock_character(MIRA, "comic").store
    rebuilt = StoryRenderer(sdxl, SMALL, tmp_path / "b").store_for(MIRA, "comic")
    assert rebuilt.key == first.key
    assert first.tokens.keys() == rebuilt.tokens.keys()
    for step, layers in first.tokens.items():
        assert all(torch.equal(x, y) for x, y in zip(layers, rebuilt.tokens[step], strict=True))


def test_two_stories_interleaved_in_one_process_do_not_affect_each_other(
    sdxl: LoadedModel, tmp_path: Path
) -> None:
    shared = StoryRenderer(sdxl, SMALL, tmp_path / "shared")
    story_a = four_panels()[:2]
    story_b = [PanelSpec(1, "[Tom] sails a boat", ("Tom",))]
    tom_b = dataclasses.replace(TOM, seed=99)  # story B's Tom looks different

    a1 = shared.render_panels(story_a, CAST, style="comic", seed=1)
    b1 = shared.render_panels(story_b, {"Tom": tom_b}, style="noir", seed=2)
    a2 = shared.render_panels(story_a, CAST, style="comic", seed=1)

    alone_b = StoryRenderer(sdxl, SMALL, tmp_path / "alone").render_panels(
        story_b, {"Tom": tom_b}, style="noir", seed=2
    )
    assert all(same(x.image, y.image) for x, y in zip(a1, a2, strict=True))
    assert same(b1[0].image, alone_b[0].image)


def test_processors_are_restored_after_an_exception_and_after_a_cancel(
    renderer: StoryRenderer,
) -> None:
    unet = renderer.pipe.unet
    before = dict(unet.attn_processors)

    def explode(progress: object) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        renderer.render_panels(four_panels()[:1], CAST, style="comic", seed=1, on_progress=explode)
    assert dict(unet.attn_processors) == before

    with pytest.raises(RenderCancelled):
        renderer.lock_character(TOM, "comic", should_cancel=lambda: True)
    after = dict(unet.attn_processors)
    assert after.keys() == before.keys()
    assert all(after[name] is before[name] for name in before)
    assert not unet._forward_pre_hooks  # the step-counting hook is gone too


def test_progress_reports_every_step_and_cancel_stops_at_the_next_step(
    renderer: StoryRenderer,
) -> None:
    seen = []
    renderer.render_panels(four_panels()[:1], CAST, style="comic", seed=1, on_progress=seen.append)
    # one lock pass for Mira, then one batch
    assert [p.done for p in seen] == list(range(1, 2 * SMALL.steps + 1))
    assert all(p.total == 2 * SMALL.steps for p in seen)

    calls = []

    def cancel_after_first_step() -> bool:
        calls.append(1)
        return True

    with pytest.raises(RenderCancelled):
        renderer.render_panels(
            four_panels()[:1], CAST, style="comic", seed=1, should_cancel=cancel_after_first_step
        )
    assert len(calls) == 1


@pytest.mark.parametrize(
    "change",
    [{"steps": 4}, {"width": 72}, {"scheduler": "DDIMScheduler"}],
)
def test_a_store_used_with_other_settings_gets_a_clear_error(
    sdxl: LoadedModel, tmp_path: Path, change: dict[str, object]
) -> None:
    store = StoryRenderer(sdxl, SMALL, tmp_path).lock_character(MIRA, "comic").store
    settings = dataclasses.replace(SMALL, **change)  # type: ignore[arg-type]
    if "scheduler" in change:
        loaded = load_pipeline("tiny-sdxl", cache_dir=tmp_path / "m", scheduler="DDIMScheduler")
        other = StoryRenderer(loaded, settings, tmp_path)
    else:
        other = StoryRenderer(sdxl, settings, tmp_path)
    with pytest.raises(StoreMismatchError, match="lock the character again"):
        other.render_panels(
            [PanelSpec(1, "[Mira] runs", ("Mira",))],
            CAST,
            style="comic",
            seed=1,
            stores={"Mira": store},
        )


def test_a_store_on_another_noise_schedule_is_caught_per_step(
    renderer: StoryRenderer,
) -> None:
    store = renderer.lock_character(MIRA, "comic").store
    shifted = IdentityStore(
        store.spec, store.layer_names, [t + 7 for t in store.timesteps], store.tokens
    )
    with pytest.raises(StoreMismatchError, match="another noise schedule"):
        renderer.render_panels(
            [PanelSpec(1, "[Mira] runs", ("Mira",))],
            CAST,
            style="comic",
            seed=1,
            stores={"Mira": shifted},
        )


def test_a_panel_shows_five_characters_with_and_without_cfg(
    sdxl: LoadedModel, tmp_path: Path
) -> None:
    cast = {f"C{i}": CharacterSpec(f"C{i}", f"person number {i}", seed=i) for i in range(5)}
    everyone = PanelSpec(1, " ".join(f"[C{i}]" for i in range(5)), tuple(cast))
    for guidance in (5.0, 1.0):
        renderer = StoryRenderer(sdxl, dataclasses.replace(SMALL, guidance=guidance), tmp_path)
        [panel] = renderer.render_panels([everyone], cast, style="comic", seed=1)
        assert panel.image.size == (64, 64)
        assert pixels(panel.image).std() > 0


def test_unknown_characters_and_empty_requests_are_refused_before_any_work(
    renderer: StoryRenderer,
) -> None:
    with pytest.raises(RenderInputError, match="unknown 'Zed'; cast: Mira, Tom"):
        renderer.render_panels([PanelSpec(1, "[Zed] hides", ("Zed",))], CAST, style="comic", seed=1)
    with pytest.raises(RenderInputError, match="no panels"):
        renderer.render_panels([], CAST, style="comic", seed=1)
    with pytest.raises(ValueError, match="unknown style 'vapor'"):
        renderer.render_panels(four_panels(), CAST, style="vapor", seed=1)
    assert renderer.store_dir is None or not list(renderer.store_dir.glob("*"))


def test_the_store_holds_exactly_what_the_accounting_predicts(renderer: StoryRenderer) -> None:
    store = renderer.lock_character(MIRA, "comic").store
    layers = unet_csa_layers(renderer.pipe.unet, store.layer_names, SMALL.width, SMALL.height)
    assert len(layers) == 36
    assert SMALL.store_dtype == "float8"  # the default: one byte per value
    predicted = store_bytes(
        layers, images=2, rate=0.5, copies=2, steps=SMALL.steps, bytes_per_value=1
    )
    assert store.nbytes == predicted
    meta = json.loads(store.spec.to_json())
    assert meta["steps"] == SMALL.steps and meta["rate"] == 0.5


def test_compact_stores_bank_fewer_steps_and_smaller_tokens(
    sdxl: LoadedModel, tmp_path: Path
) -> None:
    exact = dataclasses.replace(SMALL, store_dtype="float16")
    full = StoryRenderer(sdxl, exact, tmp_path).lock_character(MIRA, "comic").store
    compact_settings = dataclasses.replace(SMALL, bank_fraction=0.34, store_dtype="float8")
    compact = StoryRenderer(sdxl, compact_settings, tmp_path)
    store = compact.lock_character(MIRA, "comic").store
    assert sorted(store.tokens) == [0]
    assert store.nbytes * 2 * SMALL.steps == full.nbytes
    [panel] = compact.render_panels(
        [PanelSpec(1, "[Mira] runs", ("Mira",))], CAST, style="comic", seed=1
    )
    assert panel.image.size == (64, 64)


def test_sd15_uses_its_six_middle_resolution_layers(sd15: LoadedModel, tmp_path: Path) -> None:
    renderer = StoryRenderer(sd15, SMALL, tmp_path)
    assert len(renderer.layer_names) == 6
    assert {name.split(".")[1] for name in renderer.layer_names} == {"1", "2"}
    panels = renderer.render_panels(four_panels(), CAST, style="comic", seed=2)
    assert [p.index for p in panels] == [1, 2, 3, 4]


def test_a_batch_that_runs_out_of_memory_is_halved_and_gives_the_same_panels(
    sdxl: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    halves = StoryRenderer(sdxl, dataclasses.replace(SMALL, max_batch=2), tmp_path)
    expected = halves.render_panels(four_panels(), CAST, style="comic", seed=6)

    renderer = StoryRenderer(sdxl, SMALL, tmp_path)
    real_call = renderer.pipeline_call
    sizes: list[int] = []

    def small_memory(state: object, callback: object, **inputs: object) -> list[object]:
        batch = len(inputs["prompt"])  # type: ignore[arg-type]
        sizes.append(batch)
        if batch > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_call(state, callback, **inputs)  # type: ignore[arg-type]

    monkeypatch.setattr(renderer, "pipeline_call", small_memory)
    panels = renderer.render_panels(four_panels(), CAST, style="comic", seed=6)
    assert renderer.oom_splits == 1
    assert [s for s in sizes if s > 1] == [4, 2, 2]  # stores load from disk: 4 failed, then 2 + 2
    assert [p.index for p in panels] == [1, 2, 3, 4]
    assert all(same(a.image, b.image) for a, b in zip(panels, expected, strict=True))

    monkeypatch.setattr(
        renderer,
        "pipeline_call",
        lambda *a, **k: (_ for _ in ()).throw(torch.OutOfMemoryError("still too big")),
    )
    with pytest.raises(torch.OutOfMemoryError):
        renderer.render_panels(four_panels()[:1], CAST, style="comic", seed=6)
