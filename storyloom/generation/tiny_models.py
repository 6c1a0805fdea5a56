"""Built-in offline models: SD1.5- and SDXL-shaped pipelines with random weights.

No model hub is reachable offline and no package ships real Stable Diffusion weights, so
tests and local demos run on these. They are built from configs (seeded, so a rebuild
gives identical weights), saved with ``save_pretrained`` and always loaded back through
the ordinary local-folder path of :func:`storyloom.generation.models.load_pipeline`.

``tiny-sdxl`` keeps SDXL's shape where it matters for Consistent Self-Attention: three
UNet levels with ``transformer_layers_per_block=(1, 2, 10)``, so its up-blocks hold
SDXL's 36 ``attn1`` layers (30 at 1/32 of the image, 6 at 1/16). ``tiny-sd15`` keeps
SD1.5's four levels. Both decode 64 px images by default through an 8x VAE.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

TINY_MODEL_NAMES = ("tiny-sdxl", "tiny-sd15")

# Weights come from torch's global RNG; two threads building at once would interleave draws.
_SEEDED_BUILD = threading.Lock()

# Written last into a finished build; a folder without it is not a complete model.
_COMPLETE_MARKER = ".storyloom-complete"
_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"
# Whole-word merges for words prompts use often, so short prompts stay well under 77 tokens.
_COMMON_WORDS = (
    "a an and the of in on at with to is are his her their by for from man woman "
    "girl boy cat dog robot knight city forest night day red blue green black white "
    "hair eyes wearing holding standing sitting walking looking smiling comic panel "
    "style portrait photo cinematic"
)

# Scheduler settings of the released SD1.5 and SDXL checkpoints (their scheduler_config).
_SD15_SCHEDULER = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
}
_SDXL_SCHEDULER = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "interpolation_type": "linear",
    "prediction_type": "epsilon",
    "use_karras_sigmas": False,
}


class UnknownTinyModelError(ValueError):
    """The name is not one of the built-in tiny models."""


def build_tiny_model(name: str, cache_dir: Path) -> Path:
    """Build (once; reuse if already complete) tiny model ``name`` under cache_dir/<name>."""
    if name not in TINY_MODEL_NAMES:
        raise UnknownTinyModelError(name)

    def build(folder: Path) -> None:
        with _SEEDED_BUILD:
            pipe = _make_tiny_pipeline(name, folder.parent / "tokenizer-src")
        pipe.save_pretrained(folder, safe_serialization=True)

    return build_once(Path(cache_dir) / name, build)


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """``target``, built by ``build(folder)`` unless a complete one is there already.

    Built beside the target and renamed into place: a crash leaves only a temp folder, and
    of two concurrent builders the loser sees the winner's folder and drops its own."""
    if (target / _COMPLETE_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        folder = work / "built"
        build(folder)
        (folder / _COMPLETE_MARKER).write_text("ok\n")
        if target.exists() and not (target / _COMPLETE_MARKER).is_file():
            # A half folder from an older, non-atomic writer: replace it.
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(folder, target)
        except OSError:
            if not (target / _COMPLETE_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def write_tiny_tokenizer(directory: Path) -> Path:
    """Write a byte-level CLIP ``vocab.json`` + ``merges.txt`` that covers any text."""
    directory.mkdir(parents=True, exist_ok=True)
    byte_chars = list(_bytes_to_unicode().values())
    vocab_tokens = byte_chars + [c + "</w>" for c in byte_chars]
    merges: list[str] = []
    for word in _COMMON_WORDS.split():
        # Build each word left to right: "c a", "ca t</w>" → "cat</w>".
        pieces = [*word[:-1], word[-1] + "</w>"]
        merged = pieces[0]
        for piece in pieces[1:]:
            rule = f"{merged} {piece}"
            merged += piece
            if rule not in merges:
                merges.append(rule)
                vocab_tokens.append(merged)
    vocab_tokens += [_BOS, _EOS]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab_tokens))}
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return directory


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level alphabet: printable bytes map to themselves, the rest to
    # unused code points, so every UTF-8 byte has a visible one-character token.
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return dict(sorted(mapping.items()))


def _tokenizer(source: Path, pad_token: str) -> CLIPTokenizer:
    return CLIPTokenizer.from_pretrained(
        source, local_files_only=True, model_max_length=77, pad_token=pad_token
    )


def _text_config(tokenizer: CLIPTokenizer, hidden: int, layers: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=hidden,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _vae(scaling_factor: float) -> AutoencoderKL:
    # Four blocks: three downsamplings, the usual 8x between pixels and latents.
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=scaling_factor,
    )


def _make_tiny_pipeline(name: str, tokenizer_dir: Path) -> Any:
    write_tiny_tokenizer(tokenizer_dir)
    # Seeded so a rebuild gives identical weights; fork_rng leaves the caller's RNG alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if name == "tiny-sdxl":
            return _make_tiny_sdxl(tokenizer_dir)
        return _make_tiny_sd15(tokenizer_dir)


def _make_tiny_sdxl(tokenizer_dir: Path) -> Any:
    tokenizer = _tokenizer(tokenizer_dir, pad_token=_EOS)
    # SDXL's second tokenizer pads with "!"; keep that difference.
    tokenizer_2 = _tokenizer(tokenizer_dir, pad_token="!")
    text_encoder = CLIPTextModel(_text_config(tokenizer, hidden=32, layers=2))
    # Distinct widths: single-file loading tells the two encoders apart by their width.
    text_config_2 = _text_config(tokenizer_2, hidden=48, layers=2)
    text_encoder_2 = CLIPTextModelWithProjection(text_config_2)
    time_embed_dim = 8
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32, 32),
        layers_per_block=2,
        transformer_layers_per_block=(1, 2, 10),
        attention_head_dim=(2, 2, 2),
        norm_num_groups=8,
        cross_attention_dim=text_encoder.config.hidden_size + text_encoder_2.config.hidden_size,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        # Six time ids (original size, crop, target size) plus the pooled text embedding
        # (its projection is as wide as the encoder here).
        projection_class_embeddings_input_dim=6 * time_embed_dim + text_config_2.hidden_size,
    )
    return StableDiffusionXLPipeline(
        vae=_vae(scaling_factor=0.13025),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=EulerDiscreteScheduler(**_SDXL_SCHEDULER),
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )


def _make_tiny_sd15(tokenizer_dir: Path) -> Any:
    tokenizer = _tokenizer(tokenizer_dir, pad_token=_EOS)
    text_encoder = CLIPTextModel(_text_config(tokenizer, hidden=32, layers=2))
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        block_out_channels=(16, 32, 32, 32),
        layers_per_block=2,
        attention_head_dim=2,
        norm_num_groups=8,
        cross_attention_dim=text_encoder.config.hidden_size,
    )
    components: dict[str, Any] = {
        "vae": _vae(scaling_factor=0.18215),
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "unet": unet,
        "scheduler": PNDMScheduler(**_SD15_SCHEDULER),
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }
    return StableDiffusionPipeline(**components)
