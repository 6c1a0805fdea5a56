"""Model loading: tiny offline models, local folders, single-file checkpoints, hub ids."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)
from safetensors.torch import load_file

from storyloom.generation import models as models_module
from storyloom.generation.models import (
    LoadedModel,
    ModelLoadError,
    build_tiny_model,
    detect_checkpoint_family,
    load_pipeline,
)
from storyloom.testing.ldm_checkpoint import export_ldm_checkpoint

FAMILIES = [
    ("tiny-sdxl", "tiny_sdxl_dir", StableDiffusionXLPipeline, "sdxl"),
    ("tiny-sd15", "tiny_sd15_dir", StableDiffusionPipeline, "sd15"),
]
UNREACHABLE = (
    "could not load model {}: not in the local cache and the model hub is unreachable; "
    "download it first or point STORYLOOM_MODEL at a local folder (offline choices: "
    "tiny-sdxl, tiny-sd15, a diffusers folder or a checkpoint file)."
)


def weights(folder: Path, component: str) -> dict[str, torch.Tensor]:
    return load_file(str(next((folder / component).glob("*.safetensors"))))


def render(loaded: LoadedModel, *, width: int = 64, height: int = 64, seed: int = 0) -> np.ndarray:
    image = loaded.pipeline(
        prompt="a girl with red hair",
        num_inference_steps=2,
        guidance_scale=5.0,
        width=width,
        height=height,
        generator=torch.Generator().manual_seed(seed),
    ).images[0]
    return np.asarray(image)


# --- tiny models --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny-sdxl", "tiny-sd15"])
def test_tiny_builds_in_different_folders_have_identical_weights(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    first = request.getfixturevalue(f"{name.replace('-', '_')}_dir")
    second = build_tiny_model(name, tmp_path)
    for component in ("unet", "vae", "text_encoder"):
        a, b = weights(first, component), weights(second, component)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_tiny_build_reuses_a_complete_folder(tmp_path: Path) -> None:
    folder = build_tiny_model("tiny-sd15", tmp_path)
    unet_file = next((folder / "unet").glob("*.safetensors"))
    before = unet_file.stat().st_mtime_ns
    assert build_tiny_model("tiny-sd15", tmp_path) == folder
    assert unet_file.stat().st_mtime_ns == before


def test_tiny_build_replaces_a_half_written_folder(tmp_path: Path) -> None:
    half = tmp_path / "tiny-sd15"
    (half / "unet").mkdir(parents=True)
    (half / "model_index.json").write_text("{}")
    folder = build_tiny_model("tiny-sd15", tmp_path)
    assert load_pipeline(str(folder), cache_dir=tmp_path).family == "sd15"


def test_concurrent_tiny_builds_leave_one_complete_folder(tmp_path: Path) -> None:
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(build_tiny_model("tiny-sd15", tmp_path)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [tmp_path / "tiny-sd15"] * 3
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-sd15"]  # no temp folders left
    assert load_pipeline("tiny-sd15", cache_dir=tmp_path).family == "sd15"


def test_building_a_tiny_model_leaves_the_callers_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_model("tiny-sd15", tmp_path)
    assert torch.equal(torch.rand(3), expected)


def test_tiny_sdxl_has_sdxl_consistent_attention_layers(tiny_sdxl_dir: Path) -> None:
    unet = load_pipeline(str(tiny_sdxl_dir), cache_dir=tiny_sdxl_dir).pipeline.unet
    attn1 = [name for name in unet.attn_processors if ".attn1." in name]
    assert sum(n.startswith("up_blocks.0.") for n in attn1) == 30
    assert sum(n.startswith("up_blocks.1.") for n in attn1) == 6


@pytest.mark.parametrize("name", ["tiny-sdxl", "tiny-sd15"])
def test_tiny_tokenizer_encodes_any_prompt_without_unknown_tokens(
    name: str, tiny_model_cache: Path
) -> None:
    tokenizer = load_pipeline(name, cache_dir=tiny_model_cache).pipeline.tokenizer
    prompt = 'Mira\'s 2nd café visit — "Hello, world!" (50% off) #tag ✨ ' * 3
    ids = tokenizer(prompt, truncation=True, max_length=77).input_ids
    assert len(ids) == 77
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    # Unknown text would map to the unk token, which CLIP shares with end-of-text.
    assert tokenizer.eos_token_id not in ids[1:-1]
    assert tokenizer.decode(tokenizer("a cat").input_ids, skip_special_tokens=True) == "a cat"


# --- loading folders and tiny names ------------------------------------------------


@pytest.mark.parametrize(("name", "fixture", "pipeline_class", "family"), FAMILIES)
def test_folder_loads_as_its_pipeline_class_and_family(
    name: str,
    fixture: str,
    pipeline_class: type,
    family: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    folder: Path = request.getfixturevalue(fixture)
    loaded = load_pipeline(str(folder), cache_dir=tmp_path)
    assert type(loaded.pipeline) is pipeline_class
    assert (loaded.family, loaded.model_id) == (family, str(folder))
    assert loaded.pipeline.unet.dtype == torch.float32
    assert not list(tmp_path.iterdir())  # a folder is used in place, never copied


@pytest.mark.parametrize(("name", "fixture", "pipeline_class", "family"), FAMILIES)
def test_tiny_name_loads_the_same_model_as_its_folder(
    name: str,
    fixture: str,
    pipeline_class: type,
    family: str,
    request: pytest.FixtureRequest,
    tiny_model_cache: Path,
) -> None:
    by_name = load_pipeline(name, cache_dir=tiny_model_cache)
    by_folder = load_pipeline(str(request.getfixturevalue(fixture)), cache_dir=tiny_model_cache)
    assert (type(by_name.pipeline), by_name.family, by_name.model_id) == (
        pipeline_class,
        family,
        name,
    )
    assert np.array_equal(render(by_name), render(by_folder))


@pytest.mark.parametrize("name", ["tiny-sdxl", "tiny-sd15"])
@pytest.mark.parametrize(("width", "height"), [(64, 64), (128, 64)])
def test_tiny_pipeline_renders_the_requested_size(
    name: str, width: int, height: int, tiny_model_cache: Path
) -> None:
    loaded = load_pipeline(name, cache_dir=tiny_model_cache)
    assert render(loaded, width=width, height=height).shape == (height, width, 3)


def test_same_seed_gives_the_same_image_and_another_seed_does_not(
    tiny_model_cache: Path,
) -> None:
    loaded = load_pipeline("tiny-sdxl", cache_dir=tiny_model_cache)
    assert np.array_equal(render(loaded, seed=1), render(loaded, seed=1))
    assert not np.array_equal(render(loaded, seed=1), render(loaded, seed=2))


def test_family_that_contradicts_the_folder_is_refused(tiny_sdxl_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="is an sdxl model but family 'sd15'"):
        load_pipeline(str(tiny_sdxl_dir), cache_dir=tiny_sdxl_dir, family="sd15")


# --- schedulers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "default_class"), [("tiny-sdxl", EulerDiscreteScheduler), ("tiny-sd15", PNDMScheduler)]
)
def test_default_scheduler_is_the_models_own(
    name: str, default_class: type, tiny_model_cache: Path
) -> None:
    loaded = load_pipeline(name, cache_dir=tiny_model_cache)
    assert type(loaded.pipeline.scheduler) is default_class


def test_scheduler_override_keeps_the_models_noise_schedule(tiny_model_cache: Path) -> None:
    loaded = load_pipeline("tiny-sdxl", cache_dir=tiny_model_cache, scheduler="DDIMScheduler")
    scheduler = loaded.pipeline.scheduler
    assert type(scheduler) is DDIMScheduler
    assert (scheduler.config.beta_schedule, scheduler.config.beta_end) == ("scaled_linear", 0.012)
    assert render(loaded).shape == (64, 64, 3)


@pytest.mark.parametrize("bad", ["NoSuchScheduler", "UNet2DConditionModel", "scheduler"])
def test_unknown_scheduler_name_is_a_clear_error(bad: str, tiny_model_cache: Path) -> None:
    message = (
        f"unknown scheduler {bad!r}; use 'default' or a diffusers scheduler class such as "
        "EulerDiscreteScheduler, DDIMScheduler, DPMSolverMultistepScheduler."
    )
    with pytest.raises(ValueError) as error:
        load_pipeline("tiny-sd15", cache_dir=tiny_model_cache, scheduler=bad)
    assert str(error.value) == message


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["./models/nope", "/nowhere/model.safetensors", "x.ckpt"])
def test_missing_path_is_a_clear_error(missing: str, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as error:
        load_pipeline(missing, cache_dir=tmp_path)
    assert str(error.value) == (
        f"model path {missing} does not exist; check STORYLOOM_MODEL or create the file."
    )


def test_folder_without_model_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="is not a diffusers pipeline folder"):
        load_pipeline(str(tmp_path), cache_dir=tmp_path)


def test_pipeline_of_another_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    with pytest.raises(ModelLoadError, match=r"is a FluxPipeline; storyloom renders with SD1\.5"):
        load_pipeline(str(tmp_path), cache_dir=tmp_path)


def test_unknown_tiny_name_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as error:
        load_pipeline("tiny-sd3", cache_dir=tmp_path)
    assert str(error.value) == "unknown built-in model 'tiny-sd3'; use 'tiny-sdxl' or 'tiny-sd15'."
    assert not list(tmp_path.iterdir())


def test_unknown_family_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown model family 'sd3'"):
        load_pipeline("tiny-sd15", cache_dir=tmp_path, family="sd3")


@pytest.mark.parametrize("hub_id", ["stabilityai/stable-diffusion-xl-base-1.0", "sdxl-turbo"])
def test_hub_id_not_in_the_cache_is_a_clear_error_offline(
    hub_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelLoadError) as error:
        load_pipeline(hub_id, cache_dir=tmp_path)
    assert str(error.value) == UNREACHABLE.format(hub_id)


def test_hub_id_in_the_local_cache_loads_offline(
    tiny_sd15_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hub cache layout: refs/main names a snapshot folder holding the repo's files.
    repo = tmp_path / "hub" / "models--acme--tiny-comic"
    commit = "0" * 40
    shutil.copytree(tiny_sd15_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    loaded = load_pipeline("acme/tiny-comic", cache_dir=tmp_path)
    assert (type(loaded.pipeline), loaded.family) == (StableDiffusionPipeline, "sd15")
    assert loaded.model_id == "acme/tiny-comic"


# --- single-file checkpoints -----------------------------------------------------------


@pytest.mark.parametrize(("name", "fixture", "pipeline_class", "family"), FAMILIES)
def test_single_file_checkpoint_loads_the_same_model_as_its_folder(
    name: str,
    fixture: str,
    pipeline_class: type,
    family: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    folder: Path = request.getfixturevalue(fixture)
    checkpoint = export_ldm_checkpoint(folder, tmp_path / f"{name}.safetensors")
    assert detect_checkpoint_family(checkpoint) == family
    single = load_pipeline(str(checkpoint), cache_dir=tmp_path, config_dir=folder)
    assert (type(single.pipeline), single.family) == (pipeline_class, family)
    reference = load_pipeline(str(folder), cache_dir=tmp_path)
    for component in ("unet", "vae", "text_encoder", "text_encoder_2"):
        ours = getattr(single.pipeline, component, None)
        theirs = getattr(reference.pipeline, component, None)
        assert (ours is None) == (theirs is None)
        if ours is not None:
            a, b = ours.state_dict(), theirs.state_dict()
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) for k in a), component
    # Equal weights, but CPU matmuls may round differently with another memory alignment.
    difference = render(single).astype(int) - render(reference).astype(int)
    assert np.abs(difference).max() <= 2


def test_checkpoint_of_unknown_family_asks_for_the_family(tmp_path: Path) -> None:
    checkpoint = tmp_path / "mystery.safetensors"
    from safetensors.torch import save_file

    save_file({"some.weight": torch.zeros(1)}, str(checkpoint))
    assert detect_checkpoint_family(checkpoint) is None
    with pytest.raises(ModelLoadError, match="set STORYLOOM_MODEL_FAMILY"):
        load_pipeline(str(checkpoint), cache_dir=tmp_path)


def test_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(ModelLoadError, match="is not a checkpoint"):
        load_pipeline(str(notes), cache_dir=tmp_path)


def test_checkpoint_without_configs_offline_asks_for_a_config_folder(
    tiny_sd15_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    checkpoint = export_ldm_checkpoint(tiny_sd15_dir, tmp_path / "model.safetensors")
    with pytest.raises(ModelLoadError, match="set STORYLOOM_MODEL_CONFIG_DIR"):
        load_pipeline(str(checkpoint), cache_dir=tmp_path)


def test_ckpt_family_is_read_from_its_wrapped_state_dict(tmp_path: Path) -> None:
    sdxl, sd15 = tmp_path / "xl.ckpt", tmp_path / "v1.ckpt"
    torch.save(
        {"state_dict": {"conditioner.embedders.1.model.ln_final.weight": torch.ones(1)}}, sdxl
    )
    torch.save({"cond_stage_model.transformer.text_model.x": torch.ones(1)}, sd15)
    assert (detect_checkpoint_family(sdxl), detect_checkpoint_family(sd15)) == ("sdxl", "sd15")


def test_loading_a_model_prints_no_library_warnings(tmp_path: Path) -> None:
    """An operator sees no FutureWarning (diffusers' `torch_dtype` rename) on a normal start."""
    import warnings

    load_pipeline("tiny-sdxl", cache_dir=tmp_path)  # built once; the load below is the one
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_pipeline("tiny-sdxl", cache_dir=tmp_path)
    assert [str(w.message) for w in caught if "dtype" in str(w.message)] == []


def test_a_hub_id_with_no_route_to_the_hub_fails_fast_naming_the_offline_choices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not in offline mode, but no network: one short probe, not the client's retries."""
    import time

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    # a port nothing listens on: the connection is refused at once, as with no route
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "https://127.0.0.1:9")
    monkeypatch.setattr(models_module.socket, "create_connection", refuse)
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as error:
        load_pipeline("someone/some-model", cache_dir=tmp_path)
    assert str(error.value) == UNREACHABLE.format("someone/some-model")
    assert time.monotonic() - started < 30  # the download client alone retries for ~40 s


def refuse(*args: object, **kwargs: object) -> None:
    raise ConnectionRefusedError(111, "Connection refused")


def test_a_fresh_process_loading_a_model_writes_nothing_to_stderr(tmp_path: Path) -> None:
    """Library notices printed at import (transformers' torchvision fallback) reach an
    operator's terminal on every render; a fresh process is where they show."""
    import subprocess
    import sys

    load_pipeline("tiny-sd15", cache_dir=tmp_path)  # built here; the child only loads it
    child = (
        "from pathlib import Path; from storyloom.generation.models import load_pipeline; "
        f"load_pipeline('tiny-sd15', cache_dir=Path({str(tmp_path)!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stderr == ""
