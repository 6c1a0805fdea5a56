"""Sizes and FLOPs of Consistent Self-Attention, from layer shapes alone.

The identity store is sized by these functions (the store allocates exactly
``sampled_count(tokens, rate)`` tokens per image, layer and step), so the same code can
predict the store of a model we never load, such as real SDXL at 1024².
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# SDXL base UNet facts (its published config): channels per level, transformer layers per
# block, resnet layers per block (up-blocks have one more), and the VAE's 8x reduction.
SDXL_BLOCK_OUT_CHANNELS = (320, 640, 1280)
SDXL_TRANSFORMER_LAYERS = (1, 2, 10)
SDXL_LAYERS_PER_BLOCK = 2
SDXL_ATTENTION_HEAD_DIM = 64
VAE_SCALE = 8


@dataclass(frozen=True)
class LayerShape:
    """One CSA layer: tokens per image and channels of its input states."""

    tokens: int
    channels: int
    inner: int  # width of the key/value projections

    @property
    def values(self) -> int:
        return self.tokens * self.channels


def sampled_count(tokens: int, rate: float) -> int:
    """Tokens banked per image and layer: ``round(rate * tokens)``, at least one."""
    return max(1, round(rate * tokens))


def store_bytes_per_step(
    layers: Sequence[LayerShape], images: int, rate: float, copies: int, bytes_per_value: int
) -> int:
    """Bytes banked for one character at one step: copies × K × Σ sampled tokens × channels."""
    per_image = sum(sampled_count(layer.tokens, rate) * layer.channels for layer in layers)
    return copies * images * per_image * bytes_per_value


def store_bytes(
    layers: Sequence[LayerShape],
    images: int,
    rate: float,
    copies: int,
    steps: int,
    bytes_per_value: int,
) -> int:
    """Bytes of a whole identity store (all banked steps)."""
    return steps * store_bytes_per_step(layers, images, rate, copies, bytes_per_value)


def sdxl_csa_layers(width: int, height: int) -> list[LayerShape]:
    """The 36 CSA layers of real SDXL at a given image size (30 at 1/32, 6 at 1/16)."""
    layers: list[LayerShape] = []
    levels = len(SDXL_BLOCK_OUT_CHANNELS)
    for up_index in range(levels - 1):  # up-blocks 0 and 1; the last one has no attention
        level = levels - 1 - up_index
        scale = VAE_SCALE * 2**level
        tokens = (width // scale) * (height // scale)
        channels = SDXL_BLOCK_OUT_CHANNELS[level]
        count = (SDXL_LAYERS_PER_BLOCK + 1) * SDXL_TRANSFORMER_LAYERS[level]
        layers += [LayerShape(tokens, channels, channels)] * count
    return layers


def csa_extra_flops_per_panel(
    layers: Sequence[LayerShape], stored_tokens: Sequence[int], batch: int, reproject: bool
) -> int:
    """Extra FLOPs one read panel (one CFG copy) pays for attending to stored tokens.

    ``stored_tokens[i]`` is the number of banked tokens at layer i. The key/value
    projections of those tokens are shared by the batch (``reproject=False``) or paid
    again by every panel (``reproject=True``, the reference design).
    """
    flops = 0
    for layer, extra in zip(layers, stored_tokens, strict=True):
        projection = 2 * 2 * extra * layer.channels * layer.inner  # to_k and to_v
        flops += projection if reproject else projection // batch
        flops += 2 * 2 * layer.tokens * extra * layer.inner  # QKᵀ and AV over extra keys
    return flops


def unet_csa_layers(
    unet: Any, layer_names: Sequence[str], width: int, height: int, vae_scale: int = VAE_SCALE
) -> list[LayerShape]:
    """Shapes of the named CSA layers of a diffusers UNet at an image size."""
    levels = len(unet.config.block_out_channels)
    modules = dict(unet.named_modules())
    shapes = []
    for name in layer_names:
        up_index = int(name.split(".")[1])  # "up_blocks.<i>.attentions..."
        scale = vae_scale * 2 ** (levels - 1 - up_index)
        attn = modules[name.removesuffix(".processor")]
        shapes.append(
            LayerShape(
                tokens=(width // scale) * (height // scale),
                channels=attn.to_k.in_features,
                inner=attn.to_k.out_features,
            )
        )
    return shapes
