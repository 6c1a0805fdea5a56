"""Built-in offline scoring encoders for `storyloom eval`: a tiny CLIP and a tiny DINOv2.

Random weights built from configs and saved with ``save_pretrained`` in the layout of the
published models (config, safetensors, tokenizer and image processor files), then loaded
back through the same ``from_pretrained`` code a real id goes through. Their scores mean
nothing; they exist so the evaluation's code path runs in CI.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    BitImageProcessor,
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPTokenizer,
    Dinov2Config,
    Dinov2Model,
)

from storyloom.generation.tiny_models import build_once, write_tiny_tokenizer

TINY_ENCODERS = ("tiny-clip", "tiny-dino")


def build_tiny_encoder(name: str, cache_dir: Path) -> Path:
    """Build (once) the tiny encoder ``name`` under cache_dir/<name> and return the folder."""
    if name not in ("tiny-clip", "tiny-dino"):
        raise ValueError(f"unknown tiny encoder {name!r}")

    def build(folder: Path) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            if name == "tiny-clip":
                _save_clip(folder, folder.parent / "tokenizer-src")
            else:
                _save_dino(folder)

    return build_once(Path(cache_dir) / name, build)


def _save_clip(folder: Path, tokenizer_src: Path) -> None:
    write_tiny_tokenizer(tokenizer_src)
    tokenizer = CLIPTokenizer.from_pretrained(
        tokenizer_src, local_files_only=True, model_max_length=77
    )
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32).save_pretrained(folder)


def _save_dino(folder: Path) -> None:
    config = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_ratio=2,
        image_size=32,
        patch_size=8,
    )
    Dinov2Model(config).save_pretrained(folder, safe_serialization=True)
    BitImageProcessor(
        size={"shortest_edge": 32},
        crop_size={"height": 32, "width": 32},
        do_center_crop=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)
