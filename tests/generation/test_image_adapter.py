"""Characters from a reference picture: a tiny IP-Adapter loaded through diffusers' own
``load_ip_adapter``, together with Consistent Self-Attention, on the tiny models."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0
from PIL import Image
from safetensors import safe_open

from storyloom.generation.consistent_attention import (
    CSARoutes,
    RoutedProcessor,
    routed_attention,
    select_csa_layers,
)
from storyloom.generation.image_adapter import AdapterSource, load_adapter
from storyloom.generation.models import LoadedModel, ModelLoadError, load_pipeline
from storyloom.generation.renderer import (
    CharacterSpec,
    PanelSpec,
    RenderInputError,
    RenderSettings,
    StoryRenderer,
)
from storyloom.generation.tiny_adapter import TINY_ADAPTER

pytestmark = pytest.mark.timeout(600)

SMALL = RenderSettings(width=64, height=64, steps=3, guidance=5.0, max_batch=4)
SOURCES = {
    "sdxl": AdapterSource(TINY_ADAPTER, "sdxl_models", "ip-adapter_sdxl.safetensors"),
    "sd15": AdapterSource(TINY_ADAPTER, "models", "ip-adapter_sd15.safetensors"),
}


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def sdxl(model_cache: Path) -> LoadedModel:
    return load_pipeline("tiny-sdxl", cache_dir=model_cache)


@pytest.fixture(scope="module")
def sd15(model_cache: Path) -> LoadedModel:
    return load_pipeline("tiny-sd15", cache_dir=model_cache)


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reference picture as a member would give it: a JPEG, not yet cleaned."""
    path = tmp_path_factory.mktemp("refs") / "mira.jpg"
    noise = np.random.default_rng(0).integers(0, 255, (90, 70, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, format="JPEG")
    return path


def renderer_for(
    loaded: LoadedModel, store_dir: Path, cache: Path, mode: str = "csa", **kw: Any
) -> StoryRenderer:
    settings = dataclasses.replace(SMALL, identity_mode=mode, **kw)
    source = SOURCES[loaded.family]
    return StoryRenderer(loaded, settings, store_dir, adapter_source=source, adapter_cache=cache)


def pixels(image: object) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def same(a: object, b: object) -> bool:
    return np.array_equal(pixels(a), pixels(b))


def mira(reference: Path | None = None) -> CharacterSpec:
    return CharacterSpec("Mira", "a girl with short red hair", seed=11, reference=reference)


WAVES = [PanelSpec(1, "[Mira] waves", ("Mira",))]


def test_the_tiny_adapter_is_saved_in_the_published_layout(
    sdxl: LoadedModel, model_cache: Path, tmp_path: Path, picture: Path
) -> None:
    renderer = renderer_for(sdxl, tmp_path, model_cache)
    renderer.render_panels(WAVES, {"Mira": mira(picture)}, style="comic", seed=5)
    folder = model_cache / f"{TINY_ADAPTER}-sdxl" / "sdxl_models"
    assert json.loads((folder / "image_encoder" / "config.json").read_text())["architectures"] == [
        "CLIPVisionModelWithProjection"
    ]
    assert (folder / "image_encoder" / "model.safetensors").is_file()
    with safe_open(str(folder / "ip-adapter_sdxl.safetensors"), framework="pt") as f:
        keys = set(f.keys())
    assert {k.split(".")[0] for k in keys} == {"image_proj", "ip_adapter"}
    # one key/value pair per cross-attention layer, numbered as diffusers' loader counts
    cross = [n for n in sdxl.pipeline.unet.attn_processors if n.endswith("attn2.processor")]  # type: ignore[attr-defined]
    assert len([k for k in keys if k.endswith("to_k_ip.weight")]) == len(cross)


@pytest.mark.parametrize("family", ["sdxl", "sd15"])
def test_a_reference_changes_the_panels_and_the_same_reference_gives_the_same_panels(
    family: str,
    request: pytest.FixtureRequest,
    model_cache: Path,
    tmp_path: Path,
    picture: Path,
) -> None:
    loaded: LoadedModel = request.getfixturevalue(family)
    renderer = renderer_for(loaded, tmp_path, model_cache)
    plain = renderer.render_panels(WAVES, {"Mira": mira()}, style="comic", seed=5)
    first = renderer.render_panels(WAVES, {"Mira": mira(picture)}, style="comic", seed=5)
    again = renderer_for(loaded, tmp_path / "other", model_cache).render_panels(
        WAVES, {"Mira": mira(picture)}, style="comic", seed=5
    )
    assert not same(plain[0].image, first[0].image)
    assert same(first[0].image, again[0].image)


def test_without_a_reference_the_output_is_bit_identical_after_the_adapter_was_used(
    sdxl: LoadedModel, model_cache: Path, tmp_path: Path, picture: Path
) -> None:
    unet: Any = sdxl.pipeline.unet  # type: ignore[attr-defined]
    before = {name: type(p) for name, p in unet.attn_processors.items()}
    never = StoryRenderer(sdxl, SMALL, tmp_path / "never")  # no adapter configured at all
    panels = [PanelSpec(1, "[Mira] waves", ("Mira",)), PanelSpec(2, "a stormy sea")]
    reference_free = never.render_panels(panels, {"Mira": mira()}, style="comic", seed=5)
    used = renderer_for(sdxl, tmp_path / "used", model_cache)
    used.render_panels(panels, {"Mira": mira(picture)}, style="comic", seed=5)
    after = used.render_panels(panels, {"Mira": mira()}, style="comic", seed=5)
    assert all(same(a.image, b.image) for a, b in zip(reference_free, after, strict=True))
    assert {name: type(p) for name, p in unet.attn_processors.items()} == before
    assert unet.encoder_hid_proj is None


def test_the_adapter_and_consistent_attention_run_together_in_one_call(
    sdxl: LoadedModel, model_cache: Path, tmp_path: Path, picture: Path
) -> None:
    unet: Any = sdxl.pipeline.unet  # type: ignore[attr-defined]
    seen: list[tuple[set[type], set[type]]] = []

    def record(module: Any, args: Any, kwargs: Any) -> None:
        procs = module.attn_processors
        self_attn = {
            type(p)
            for n, p in procs.items()
            if n.startswith("up_blocks.0.") and n.endswith("attn1.processor")
        }
        cross_attn = {type(p) for n, p in procs.items() if n.endswith("attn2.processor")}
        seen.append((self_attn, cross_attn))

    hook = unet.register_forward_pre_hook(record, with_kwargs=True)
    try:
        renderer = renderer_for(sdxl, tmp_path, model_cache)
        renderer.render_panels(WAVES, {"Mira": mira(picture)}, style="comic", seed=5)
    finally:
        hook.remove()
    # the read pass (last calls) and the lock pass: CSA on attn1, the adapter on attn2
    assert seen and all(s == {RoutedProcessor} for s, _ in seen)
    assert all(c == {IPAdapterAttnProcessor2_0} for _, c in seen)


def test_reference_and_mode_change_the_store_key_and_old_specs_keep_theirs(
    sdxl: LoadedModel, model_cache: Path, tmp_path: Path, picture: Path
) -> None:
    renderer = renderer_for(sdxl, tmp_path, model_cache)
    spec = renderer.identity_spec(mira(), "comic")
    # the key as stores were named before these fields existed
    old = {
        k: v
        for k, v in dataclasses.asdict(spec).items()
        if k not in {"reference", "identity_mode", "adapter"}
    }
    canonical = json.dumps(old, sort_keys=True, ensure_ascii=False)
    assert spec.key() == hashlib.sha256(canonical.encode()).hexdigest()[:32]
    pictured = renderer.identity_spec(mira(picture), "comic")
    assert pictured.reference.endswith(".png") and len(pictured.reference) == 64 + 4
    moded = renderer_for(sdxl, tmp_path, model_cache, "csa+reference").identity_spec(
        mira(), "comic"
    )
    assert len({spec.key(), pictured.key(), moded.key()}) == 3


def test_sheet_as_reference_conditions_later_panels_and_survives_a_fresh_renderer(
    sdxl: LoadedModel, model_cache: Path, tmp_path: Path
) -> None:
    cast = {"Mira": mira()}
    csa = renderer_for(sdxl, tmp_path / "csa", model_cache)
    both = renderer_for(sdxl, tmp_path / "both", model_cache, "csa+reference")
    sheet = both.lock_character(mira(), "comic")
    key = both.identity_spec(mira(), "comic").key()
    kept = tmp_path / "both" / f"{key}.sheet.png"
    assert same(Image.open(kept).convert("RGB"), sheet.images[0])
    with_sheet = both.render_panels(WAVES, cast, style="comic", seed=5)
    plain = csa.render_panels(WAVES, cast, style="comic", seed=5)
    assert not same(with_sheet[0].image, plain[0].image)

    # another process: the store and its sheet image are read from disk, no lock pass
    fresh = renderer_for(sdxl, tmp_path / "both", model_cache, "csa+reference")

    def no_lock(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("locked again instead of reading the store and its sheet")

    fresh._write = no_lock  # type: ignore[method-assign]
    again = fresh.render_panels(WAVES, cast, style="comic", seed=5)
    assert same(again[0].image, with_sheet[0].image)


def test_a_lost_sheet_image_is_drawn_again_identically(
    sdxl: LoadedModel, model_cache: Path, tmp_path: Path
) -> None:
    cast = {"Mira": mira()}
    first = renderer_for(sdxl, tmp_path, model_cache, "csa+reference")
    panels = first.render_panels(WAVES, cast, style="comic", seed=5)
    for png in tmp_path.glob("*.sheet.png"):
        png.unlink()
    again = renderer_for(sdxl, tmp_path, model_cache, "csa+reference")
    assert same(again.render_panels(WAVES, cast, style="comic", seed=5)[0].image, panels[0].image)
    assert list(tmp_path.glob("*.sheet.png"))


@pytest.mark.parametrize("family", ["sdxl", "sd15"])
def test_sheet_as_reference_batches_give_the_panels_one_by_one_gives(
    family: str,
    request: pytest.FixtureRequest,
    model_cache: Path,
    tmp_path: Path,
    picture: Path,
) -> None:
    loaded: LoadedModel = request.getfixturevalue(family)
    cast = {"Mira": mira(picture), "Tom": CharacterSpec("Tom", "an old man", seed=12)}
    panels = [
        PanelSpec(1, "[Mira] walks on a beach", ("Mira",)),
        PanelSpec(2, "[Mira] and [Tom] talk", ("Mira", "Tom")),
        PanelSpec(3, "[Tom] lights a lamp", ("Tom",)),
        PanelSpec(4, "a stormy sea"),
    ]
    batched = renderer_for(loaded, tmp_path, model_cache, "csa+reference")
    single = renderer_for(loaded, tmp_path, model_cache, "csa+reference", max_batch=1)
    steps: list[int] = []
    a = batched.render_panels(
        panels, cast, style="comic", seed=3, on_progress=lambda p: steps.append(p.done)
    )
    b = single.render_panels(panels, cast, style="comic", seed=3)
    assert [p.index for p in a] == [1, 2, 3, 4]
    for x, y in zip(a, b, strict=True):
        # equal up to float rounding: batch shapes differ (a batch whose images have
        # different pictures once mixed them across rows, by 15 levels)
        assert np.abs(pixels(x.image) - pixels(y.image)).max() <= 2
    assert steps == list(range(1, len(steps) + 1))  # progress counts every call's steps once


def test_a_missing_or_mismatched_adapter_fails_with_one_sentence(
    sd15: LoadedModel, sdxl: LoadedModel, model_cache: Path, tmp_path: Path, picture: Path
) -> None:
    cast = {"Mira": mira(picture)}
    missing = AdapterSource(str(tmp_path / "nowhere"), "models", "ip-adapter_sd15.safetensors")
    renderer = StoryRenderer(sd15, SMALL, tmp_path, adapter_source=missing)
    with pytest.raises(ModelLoadError) as error:
        renderer.render_panels(WAVES, cast, style="comic", seed=5)
    assert "does not exist" in str(error.value) and "\n" not in str(error.value)

    # a folder without the weight file
    renderer_for(sdxl, tmp_path, model_cache).render_panels(WAVES, cast, style="comic", seed=5)
    folder = model_cache / f"{TINY_ADAPTER}-sdxl"
    absent = AdapterSource(str(folder), "sdxl_models", "ip-adapter_plus.safetensors")
    renderer = StoryRenderer(sdxl, SMALL, tmp_path, adapter_source=absent)
    with pytest.raises(ModelLoadError, match="could not load the image adapter") as error:
        renderer.render_panels(WAVES, cast, style="comic", seed=5)
    assert "\n" not in str(error.value)

    # SDXL weights given to an SD1.5 model
    wrong = AdapterSource(str(folder), "sdxl_models", "ip-adapter_sdxl.safetensors")
    unet: Any = sd15.pipeline.unet  # type: ignore[attr-defined]
    before = {name: type(p) for name, p in unet.attn_processors.items()}
    renderer = StoryRenderer(sd15, SMALL, tmp_path, adapter_source=wrong)
    with pytest.raises(ModelLoadError, match="does not fit the sd15 model") as error:
        renderer.render_panels(WAVES, cast, style="comic", seed=5)
    assert "\n" not in str(error.value)
    assert {name: type(p) for name, p in unet.attn_processors.items()} == before
    assert unet.encoder_hid_proj is None


def test_a_reference_without_an_adapter_or_a_readable_picture_is_refused(
    sdxl: LoadedModel, model_cache: Path, tmp_path: Path
) -> None:
    no_adapter = StoryRenderer(sdxl, SMALL, tmp_path)
    (tmp_path / "ok.png").write_bytes(b"")
    Image.new("RGB", (8, 8), "red").save(tmp_path / "ok.png")
    with pytest.raises(RenderInputError, match="need an image adapter"):
        no_adapter.render_panels(WAVES, {"Mira": mira(tmp_path / "ok.png")}, style="comic", seed=5)
    renderer = renderer_for(sdxl, tmp_path, model_cache)
    with pytest.raises(RenderInputError, match="cannot be read"):
        renderer.render_panels(WAVES, {"Mira": mira(tmp_path / "gone.png")}, style="comic", seed=5)
    (tmp_path / "text.png").write_text("not a picture")
    with pytest.raises(RenderInputError, match="PNG, JPEG or WebP"):
        renderer.render_panels(WAVES, {"Mira": mira(tmp_path / "text.png")}, style="comic", seed=5)


def test_loading_the_adapter_while_csa_is_installed_keeps_csa_and_the_unet_as_it_was(
    sd15: LoadedModel, model_cache: Path
) -> None:
    # diffusers' load_ip_adapter replaces every processor; ours must put them all back
    unet: Any = sd15.pipeline.unet  # type: ignore[attr-defined]
    layers = select_csa_layers(unet)
    with routed_attention(unet, CSARoutes(), layers):
        installed = dict(unet.attn_processors)
        adapter = load_adapter(sd15.pipeline, "sd15", SOURCES["sd15"], model_cache)
        assert dict(unet.attn_processors) == installed  # the very same objects
        assert unet.encoder_hid_proj is None
    assert set(adapter.processors) == {n for n in installed if n.endswith("attn2.processor")}
    assert all(isinstance(p, IPAdapterAttnProcessor2_0) for p in adapter.processors.values())
