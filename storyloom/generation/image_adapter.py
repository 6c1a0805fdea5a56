"""An image adapter (IP-Adapter): a character's look conditioned on a picture, beside CSA.

The adapter is loaded once, through diffusers' own ``load_ip_adapter`` (SD1.5 or SDXL
weights, a transformers ``CLIPVisionModelWithProjection`` as image encoder). That loader
replaces *every* attention processor and sets the UNet's image projection, which would
make every later call need a picture and would drop whatever processors were installed.
So right after loading, its cross-attention (``attn2``) processors and projection are
taken out and the UNet is put back exactly as it was: a call without a picture runs the
stock pipeline, bit for bit. A call with pictures installs them for that call only and
restores them in ``finally``; it touches ``attn2`` only, so Consistent Self-Attention
(which replaces ``attn1``) composes with it in either nesting order.

The pictures' embeddings reach the UNet directly (a forward pre-hook), one row per
image: the pipelines' ``ip_adapter_image_embeds`` repeats what it is given once per
prompt, so a batch whose images have different pictures would mix them across rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers.models.attention_processor import AttnProcessor2_0
from PIL import Image

from storyloom.generation.models import ModelLoadError, hub_reachable, library_renames_quiet
from storyloom.generation.tiny_adapter import TINY_ADAPTER, build_tiny_adapter


@dataclass(frozen=True)
class AdapterSource:
    """Where the adapter of one model family is read from, and how strongly it conditions."""

    model: str
    subfolder: str
    weight_name: str
    image_encoder: str = "image_encoder"
    scale: float = 0.6

    @property
    def name(self) -> str:
        """What identifies the adapter's effect in an identity spec."""
        return f"{self.model}/{self.subfolder}/{self.weight_name}@{self.scale:g}"


class ImageAdapter:
    """A loaded adapter, held apart from the UNet until a call installs it."""

    def __init__(self, pipe: Any, processors: dict[str, Any], projection: Any, source: Any):
        self.pipe = pipe
        self.processors = processors  # attn2 name -> IP-Adapter processor
        self.projection = projection
        self.source: AdapterSource = source
        self._embeds: dict[str, torch.Tensor] = {}  # a picture's hash -> its embedding

    @contextmanager
    def installed(self, embeds: torch.Tensor) -> Iterator[None]:
        """Condition this call's cross-attention on ``embeds`` (one row per UNet batch row,
        see ``image_embeds``); always restore the UNet."""
        unet = self.pipe.unet

        def give_embeds(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            sample = args[0] if args else kwargs["sample"]
            if sample.shape[0] != embeds.shape[0]:
                raise ValueError(f"{embeds.shape[0]} picture rows for a batch of {sample.shape[0]}")
            added = dict(kwargs.get("added_cond_kwargs") or {})
            added["image_embeds"] = [embeds.to(device=sample.device, dtype=sample.dtype)]
            return args, {**kwargs, "added_cond_kwargs": added}

        original: dict[str, Any] = dict(unet.attn_processors)
        hid_proj, hid_type = unet.encoder_hid_proj, unet.config.encoder_hid_dim_type
        # set_attn_processor empties the dict it is given: always pass a fresh one
        unet.set_attn_processor({n: self.processors.get(n, p) for n, p in original.items()})
        unet.encoder_hid_proj = self.projection
        unet.config.encoder_hid_dim_type = "ip_image_proj"
        hook = unet.register_forward_pre_hook(give_embeds, with_kwargs=True)
        try:
            yield
        finally:
            hook.remove()
            unet.set_attn_processor(dict(original))
            unet.encoder_hid_proj = hid_proj
            unet.config.encoder_hid_dim_type = hid_type

    def embed(self, picture: Image.Image) -> torch.Tensor:
        """The image encoder's embedding of one picture, (1, dim), cached per picture."""
        key = hashlib.sha256(picture.tobytes()).hexdigest() + repr(picture.size)
        cached = self._embeds.get(key)
        if cached is None:
            pixels = self.pipe.feature_extractor(picture, return_tensors="pt").pixel_values
            encoder = self.pipe.image_encoder
            pixels = pixels.to(device=encoder.device, dtype=encoder.dtype)
            with torch.inference_mode():
                cached = encoder(pixels).image_embeds
            if len(self._embeds) > 64:
                self._embeds.clear()
            self._embeds[key] = cached
        return cached

    def image_embeds(
        self, pictures: Sequence[Sequence[Image.Image]], guidance: bool
    ) -> torch.Tensor:
        """(rows, pictures, dim) for a batch whose image i is conditioned on ``pictures[i]``
        (every image the same number); with guidance the unconditional rows come first
        and get zeros, as diffusers' own encoding gives them."""
        counts = {len(row) for row in pictures}
        if len(counts) != 1 or 0 in counts:
            raise ValueError("every image of a batch needs the same number of pictures (≥ 1)")
        rows = torch.stack([torch.cat([self.embed(p) for p in row]) for row in pictures])
        if guidance:
            rows = torch.cat([torch.zeros_like(rows), rows])
        return rows


def load_adapter(pipe: Any, family: str, source: AdapterSource, cache_dir: Path) -> ImageAdapter:
    """Load ``source`` into ``pipe`` with ``load_ip_adapter``, then lift it back out (see the
    module docstring); a missing or mismatched adapter fails with one sentence."""
    location, local = _locate(pipe, family, source, cache_dir)

    def load() -> None:
        try:
            _load(pipe, location, source, local_files_only=True)
        except OSError as error:
            if local or not hub_reachable():
                raise ModelLoadError(
                    f"could not load the image adapter {source.name}: {_reason(error)}; "
                    "download it first or set STORYLOOM_ADAPTER_MODEL to a local folder."
                ) from None
            _load(pipe, location, source, local_files_only=False)
        except (ValueError, RuntimeError, KeyError) as error:
            raise ModelLoadError(
                f"the image adapter {source.name} does not fit the {family} model "
                f"{_reason(error)}; set STORYLOOM_ADAPTER_WEIGHT_{family.upper()} to its weights."
            ) from None

    return lift_adapter(pipe, load, source)


def lift_adapter(pipe: Any, load: Callable[[], None], source: AdapterSource) -> ImageAdapter:
    """Run ``load`` (which puts an adapter into ``pipe.unet`` the way diffusers' loaders
    do), then take its processors and projection out and restore the UNet as it was,
    whether or not ``load`` succeeded."""
    unet = pipe.unet
    original: dict[str, Any] = dict(unet.attn_processors)
    hid_proj, hid_type = unet.encoder_hid_proj, unet.config.encoder_hid_dim_type
    # the loader re-creates each installed processor's class with no arguments, which ours
    # (CSA's, bound to a state) refuse: it sees stock processors, whatever is installed
    unet.set_attn_processor({name: AttnProcessor2_0() for name in original})
    try:
        load()
    finally:
        processors = {
            name: proc
            for name, proc in unet.attn_processors.items()
            if name.endswith("attn2.processor")
        }
        projection = unet.encoder_hid_proj
        unet.set_attn_processor(dict(original))
        unet.encoder_hid_proj = hid_proj
        unet.config.encoder_hid_dim_type = hid_type
    return ImageAdapter(pipe, processors, projection, source)


def _locate(pipe: Any, family: str, source: AdapterSource, cache_dir: Path) -> tuple[str, bool]:
    """(where load_ip_adapter reads from, whether that is a local folder)."""
    if source.model == TINY_ADAPTER:
        built = build_tiny_adapter(
            pipe.unet, family, cache_dir, source.subfolder, source.weight_name
        )
        return str(built), True
    path = Path(source.model).expanduser()
    if path.is_dir():
        return str(path), True
    if source.model.startswith((".", "/", "~")):
        raise ModelLoadError(
            f"the image adapter folder {source.model} does not exist; "
            "check STORYLOOM_ADAPTER_MODEL."
        )
    return source.model, False


def _load(pipe: Any, location: str, source: AdapterSource, *, local_files_only: bool) -> None:
    with library_renames_quiet():
        pipe.load_ip_adapter(
            location,
            subfolder=source.subfolder,
            weight_name=source.weight_name,
            image_encoder_folder=source.image_encoder,
            local_files_only=local_files_only,
        )
    pipe.set_ip_adapter_scale(source.scale)


def _reason(error: BaseException) -> str:
    """The first line of a library's error, short enough for one sentence."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"({text[:160]})"
