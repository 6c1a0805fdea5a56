"""The one code path that turns a model name into a ready diffusers pipeline.

A model is one of: a built-in tiny name (built into ``cache_dir``, then loaded from that
folder like any other), a local diffusers folder, a single-file checkpoint
(``.safetensors``/``.ckpt``, loaded with ``from_single_file``; offline it needs
``config_dir``, a local diffusers folder of the same family), or a hub id.
"""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import diffusers
import huggingface_hub.constants
import torch
import transformers
from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline

from storyloom.generation.tiny_models import TINY_MODEL_NAMES, build_tiny_model

__all__ = [
    "LoadedModel",
    "ModelFamily",
    "ModelLoadError",
    "build_tiny_model",
    "detect_checkpoint_family",
    "load_pipeline",
]

ModelFamily = Literal["sdxl", "sd15"]

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
# Typed Any: mypy sees diffusers' top-level names as untyped dummies.
_PIPELINE_CLASSES: dict[ModelFamily, Any] = {
    "sdxl": StableDiffusionXLPipeline,
    "sd15": StableDiffusionPipeline,
}
_SCHEDULER_EXAMPLES = "EulerDiscreteScheduler, DDIMScheduler, DPMSolverMultistepScheduler"


class ModelLoadError(Exception):
    """A model could not be loaded; the message says what to do about it."""


@dataclass(frozen=True)
class LoadedModel:
    """A pipeline ready to render, with its family and the model string the user gave."""

    pipeline: DiffusionPipeline
    family: ModelFamily
    model_id: str


def load_pipeline(
    model: str,
    *,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    cache_dir: Path,
    family: str = "auto",
    config_dir: Path | None = None,
    scheduler: str = "default",
) -> LoadedModel:
    """Load ``model`` (tiny name, diffusers folder, single-file checkpoint or hub id)."""
    wanted = _parse_family(family)
    path = Path(model).expanduser()
    # renders report their own progress; the loader's per-component bar is noise in chat logs
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()  # its text encoders' "Loading weights"
    if model in TINY_MODEL_NAMES:
        pipe, found = _load_folder(build_tiny_model(model, cache_dir), model, wanted, dtype)
    elif path.is_dir():
        pipe, found = _load_folder(path, model, wanted, dtype)
    elif path.is_file():
        pipe, found = _load_single_file(path, model, wanted, config_dir, dtype)
    elif model.startswith("tiny-"):
        names = " or ".join(repr(n) for n in TINY_MODEL_NAMES)
        raise ModelLoadError(f"unknown built-in model {model!r}; use {names}.")
    elif _looks_like_path(model):
        raise ModelLoadError(
            f"model path {model} does not exist; check STORYLOOM_MODEL or create the file."
        )
    else:
        pipe, found = _load_hub(model, wanted, dtype)
    if scheduler != "default":
        pipe.scheduler = make_scheduler(scheduler, pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    # dtype was applied while loading; passing it again makes diffusers warn about every model.
    pipe.to(device)
    return LoadedModel(pipeline=pipe, family=found, model_id=model)


def make_scheduler(name: str, config: Any) -> Any:
    """A diffusers scheduler of class ``name`` made from another scheduler's config."""
    scheduler_class = getattr(diffusers, name, None)
    if not (
        isinstance(scheduler_class, type) and issubclass(scheduler_class, diffusers.SchedulerMixin)
    ):
        raise ValueError(
            f"unknown scheduler {name!r}; use 'default' or a diffusers scheduler class "
            f"such as {_SCHEDULER_EXAMPLES}."
        )
    return scheduler_class.from_config(config)


def detect_checkpoint_family(path: Path) -> ModelFamily | None:
    """Family of a single-file checkpoint from its (LDM-named) keys, or None if unknown."""
    keys = _checkpoint_keys(path)
    # SDXL conditions on two text encoders, stored under conditioner.embedders.{0,1}.
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl"
    if any(k.startswith("cond_stage_model.transformer.") for k in keys):
        return "sd15"
    return None


def _parse_family(family: str) -> ModelFamily | None:
    if family == "auto":
        return None
    if family == "sdxl":
        return "sdxl"
    if family == "sd15":
        return "sd15"
    raise ModelLoadError(f"unknown model family {family!r}; use 'auto', 'sdxl' or 'sd15'.")


def _looks_like_path(model: str) -> bool:
    # Hub ids are "name" or "owner/name"; anything else path-shaped is a missing file.
    return (
        model.startswith((".", "/", "~"))
        or model.endswith(CHECKPOINT_SUFFIXES)
        or model.count("/") > 1
        or "\\" in model
    )


def _family_of_class(class_name: str, model: str) -> ModelFamily:
    if class_name.startswith("StableDiffusionXL"):
        return "sdxl"
    if class_name.startswith("StableDiffusion") and class_name[len("StableDiffusion") :] in (
        "Pipeline",
        "Img2ImgPipeline",
        "InpaintPipeline",
    ):
        return "sd15"
    raise ModelLoadError(
        f"{model} is a {class_name}; storyloom renders with SD1.5 or SDXL pipelines only."
    )


def _check_family(found: ModelFamily, wanted: ModelFamily | None, model: str) -> None:
    if wanted is not None and wanted != found:
        raise ModelLoadError(
            f"{model} is an {found} model but family {wanted!r} was asked for; "
            "set the family to 'auto' or to the model's family."
        )


@contextmanager
def _library_renames_quiet() -> Iterator[None]:
    """Newer diffusers renamed `torch_dtype` to `dtype` and warn on every load; older ones
    (our range starts at 0.31) know only `torch_dtype`. Keep the name both accept, without
    the warnings operators would otherwise see on every start."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch_dtype` is deprecated", FutureWarning)
        # diffusers still passes an argument huggingface_hub retired (and says so each time)
        warnings.filterwarnings("ignore", r"The `local_dir_use_symlinks` argument", UserWarning)
        yield


def _pretrained_kwargs(family: ModelFamily, dtype: torch.dtype) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"torch_dtype": dtype}
    if family == "sd15":
        # Comics are drawn by the channel's members; the NSFW checker is not part of the bot.
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    return kwargs


def _load_folder(
    folder: Path, model: str, wanted: ModelFamily | None, dtype: torch.dtype
) -> tuple[Any, ModelFamily]:
    if not (folder / "model_index.json").is_file():
        raise ModelLoadError(
            f"{model} is not a diffusers pipeline folder (no model_index.json); "
            "point STORYLOOM_MODEL at a folder saved with save_pretrained or at a checkpoint file."
        )
    config = DiffusionPipeline.load_config(folder)
    found = _family_of_class(str(config.get("_class_name")), model)
    _check_family(found, wanted, model)
    with _library_renames_quiet():
        pipe = _PIPELINE_CLASSES[found].from_pretrained(
            folder, local_files_only=True, **_pretrained_kwargs(found, dtype)
        )
    return pipe, found


def _load_hub(
    model: str, wanted: ModelFamily | None, dtype: torch.dtype
) -> tuple[Any, ModelFamily]:
    unreachable = (
        f"could not load model {model}: not in the local cache and the model hub is "
        "unreachable; download it first or point STORYLOOM_MODEL at a local folder "
        f"(offline choices: {', '.join(TINY_MODEL_NAMES)}, a diffusers folder or a "
        "checkpoint file)."
    )
    try:
        # Same lookup from_pretrained does first: model_index.json names the pipeline.
        # The cache first: a hub that cannot be reached would be retried for ~40 s.
        with _library_renames_quiet():
            config = DiffusionPipeline.load_config(model, local_files_only=True)
    except OSError:
        if not _hub_reachable():
            raise ModelLoadError(unreachable) from None
        try:
            with _library_renames_quiet():
                config = DiffusionPipeline.load_config(model)
        except OSError as error:
            raise ModelLoadError(unreachable) from error
    found = _family_of_class(str(config.get("_class_name")), model)
    _check_family(found, wanted, model)
    try:
        with _library_renames_quiet():
            pipe = _PIPELINE_CLASSES[found].from_pretrained(
                model, **_pretrained_kwargs(found, dtype)
            )
    except OSError as error:
        raise ModelLoadError(unreachable) from error
    return pipe, found


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the model hub answers at all (offline mode, no route, no DNS: no), asked
    once with a short timeout instead of the download client's long retries."""
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return False
    host = urlsplit(huggingface_hub.constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def _load_single_file(
    path: Path,
    model: str,
    wanted: ModelFamily | None,
    config_dir: Path | None,
    dtype: torch.dtype,
) -> tuple[Any, ModelFamily]:
    if path.suffix not in CHECKPOINT_SUFFIXES:
        raise ModelLoadError(
            f"{model} is not a checkpoint; use a .safetensors or .ckpt file or a diffusers folder."
        )
    found = wanted or detect_checkpoint_family(path)
    if found is None:
        raise ModelLoadError(
            f"cannot tell whether {model} is SDXL or SD1.5; set STORYLOOM_MODEL_FAMILY."
        )
    kwargs = _pretrained_kwargs(found, dtype)
    if config_dir is not None:
        # Offline, from_single_file would otherwise fetch the component configs from the hub.
        kwargs.update(config=str(config_dir), local_files_only=True)
    try:
        with _library_renames_quiet():
            pipe = _PIPELINE_CLASSES[found].from_single_file(str(path), **kwargs)
    except OSError as error:
        raise ModelLoadError(
            f"could not load checkpoint {model}: its configs are not available offline; "
            "set STORYLOOM_MODEL_CONFIG_DIR to a local diffusers folder of the same family."
        ) from error
    return pipe, found


def _checkpoint_keys(path: Path) -> list[str]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return list(handle.keys())
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    # Original LDM .ckpt files wrap the weights in {"state_dict": ...}.
    state = state.get("state_dict", state)
    return list(state)


# The image adapter loads through the same offline-first rules (storyloom.generation.image_adapter).
hub_reachable = _hub_reachable
library_renames_quiet = _library_renames_quiet
