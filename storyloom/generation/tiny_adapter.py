"""A built-in offline image adapter: IP-Adapter-shaped random weights for the tiny models.

No hub is reachable offline and no package ships IP-Adapter weights, so tests build one
here, in the layout the published checkpoints (h94/IP-Adapter) ship in: a weight file
``<subfolder>/<weight_name>`` with ``image_proj.*`` and ``ip_adapter.<n>.to_{k,v}_ip``
keys, and ``<subfolder>/image_encoder/`` (config.json + model.safetensors of a
``CLIPVisionModelWithProjection``). It is then loaded through diffusers' own
``load_ip_adapter``, exactly as a real checkpoint is. The shapes are read from the UNet
it is built for; seeded, so a rebuild gives identical weights.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from storyloom.generation.tiny_models import build_once

TINY_ADAPTER = "tiny-ip-adapter"
_IMAGE_EMBED_DIM = 16  # the encoder's projection width (real ones: 768 or 1280)


def build_tiny_adapter(
    unet: Any, family: str, cache_dir: Path, subfolder: str, weight_name: str
) -> Path:
    """Build (once) a tiny adapter for ``unet`` under cache_dir and return its folder."""
    target = Path(cache_dir) / f"{TINY_ADAPTER}-{family}"
    if not (target / subfolder / weight_name).is_file():
        shutil.rmtree(target, ignore_errors=True)  # built for other weight names: again

    def build(root: Path) -> None:
        folder = root / subfolder
        folder.mkdir(parents=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            encoder = CLIPVisionModelWithProjection(_encoder_config())
        encoder.save_pretrained(folder / "image_encoder", safe_serialization=True)
        save_file(adapter_weights(unet), str(folder / weight_name))

    return build_once(target, build)


def adapter_weights(unet: Any, seed: int = 0) -> dict[str, torch.Tensor]:
    """IP-Adapter weights for ``unet`` with published key names: the image projection (4
    tokens) and one key/value projection per cross-attention layer, numbered by the layer's
    position among all attention processors (as diffusers' loader counts them)."""
    generator = torch.Generator().manual_seed(seed)
    cross = int(unet.config.cross_attention_dim)

    def rand(*shape: int) -> torch.Tensor:
        return (torch.randn(shape, generator=generator) * 0.2).contiguous()

    weights = {
        "image_proj.proj.weight": rand(4 * cross, _IMAGE_EMBED_DIM),
        "image_proj.proj.bias": rand(4 * cross),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    modules = dict(unet.named_modules())
    for position, name in enumerate(unet.attn_processors):
        if name.endswith("attn1.processor"):
            continue
        hidden = modules[name.removesuffix(".processor")].to_k.out_features
        weights[f"ip_adapter.{position}.to_k_ip.weight"] = rand(hidden, cross)
        weights[f"ip_adapter.{position}.to_v_ip.weight"] = rand(hidden, cross)
    return weights


def _encoder_config() -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=_IMAGE_EMBED_DIM,
    )
