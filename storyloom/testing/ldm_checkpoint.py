"""Write a diffusers SD1.5/SDXL folder as one single-file checkpoint in the original LDM naming.

``from_single_file`` accepts only the original (LDM / open-clip) key names, so testing
the single-file path offline needs a checkpoint in that naming; this writes one from the
tiny models (any SD1.5/SDXL folder with the standard block layout works). The map was
written from the LDM names that diffusers' single-file loader reads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

_UNET_FIXED = {
    "conv_in": "input_blocks.0.0",
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_VAE_ATTENTION = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}
_OPEN_CLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}


def export_ldm_checkpoint(folder: Path, out: Path) -> Path:
    """Save the SD1.5/SDXL pipeline in ``folder`` as an LDM-named ``.safetensors`` at ``out``."""
    class_name = json.loads((folder / "model_index.json").read_text())["_class_name"]
    unet_config = json.loads((folder / "unet" / "config.json").read_text())
    vae_config = json.loads((folder / "vae" / "config.json").read_text())
    state: dict[str, torch.Tensor] = {}
    for key, value in _weights(folder / "unet").items():
        state["model.diffusion_model." + _unet_key(key, unet_config)] = value
    for key, value in _weights(folder / "vae").items():
        ldm_key, ldm_value = _vae_item(key, value, len(vae_config["up_block_types"]))
        state["first_stage_model." + ldm_key] = ldm_value
    if class_name.startswith("StableDiffusionXL"):
        state |= _clip_state(folder / "text_encoder", "conditioner.embedders.0.transformer.")
        state |= _open_clip_state(folder / "text_encoder_2", "conditioner.embedders.1.model.")
    else:
        state |= _clip_state(folder / "text_encoder", "cond_stage_model.transformer.")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out))
    return out


def _weights(component: Path) -> dict[str, torch.Tensor]:
    files = sorted(component.glob("*.safetensors"))
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        weights |= load_file(str(file))
    return weights


def _unet_key(key: str, config: dict[str, Any]) -> str:
    per_level = config["layers_per_block"] + 1  # LDM numbers resnets and samplers in one run
    for prefix, ldm in _UNET_FIXED.items():
        if key.startswith(prefix + "."):
            return ldm + key[len(prefix) :]
    if match := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        level, kind, j, rest = int(match[1]), match[2], int(match[3]), match[4]
        index = 1 + level * per_level + j
        return f"input_blocks.{index}." + _layer(kind, rest)
    if match := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        index = 1 + int(match[1]) * per_level + per_level - 1
        return f"input_blocks.{index}.0.op.{match[2]}"
    if match := re.match(r"mid_block\.resnets\.(\d)\.(.*)", key):
        return f"middle_block.{2 * int(match[1])}." + _resnet(match[2])
    if match := re.match(r"mid_block\.attentions\.0\.(.*)", key):
        return f"middle_block.1.{match[1]}"
    if match := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        level, kind, j, rest = int(match[1]), match[2], int(match[3]), match[4]
        return f"output_blocks.{level * per_level + j}." + _layer(kind, rest)
    if match := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        level = int(match[1])
        # The upsampler follows the resnet, and the attention when the level has one.
        slot = 2 if config["up_block_types"][level].startswith("CrossAttn") else 1
        return f"output_blocks.{level * per_level + per_level - 1}.{slot}.conv.{match[2]}"
    raise ValueError(f"no LDM name for UNet weight {key}")


def _layer(kind: str, rest: str) -> str:
    return "0." + _resnet(rest) if kind == "resnets" else "1." + rest


def _resnet(rest: str) -> str:
    name, _, tail = rest.partition(".")
    return f"{_RESNET.get(name, name)}.{tail}"


def _vae_item(key: str, value: torch.Tensor, levels: int) -> tuple[str, torch.Tensor]:
    key = key.replace("conv_norm_out", "norm_out")
    if match := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.*)", key):
        part, k, rest = match[1], int(match[2]), match[3]
        return f"{part}.mid.block_{k + 1}.{rest}", value
    if match := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)\.(weight|bias)", key):
        part, layer, kind = match[1], match[2], match[3]
        if layer != "group_norm" and kind == "weight":
            value = value[:, :, None, None]  # LDM's VAE attention uses 1x1 convolutions
        return f"{part}.mid.attn_1.{_VAE_ATTENTION[layer]}.{kind}", value
    if match := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        rest = _vae_resnet(match[3])
        return f"encoder.down.{match[1]}.block.{match[2]}.{rest}", value
    if match := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.*)", key):
        return f"encoder.down.{match[1]}.downsample.{match[2]}", value
    # LDM numbers the decoder's levels from the lowest resolution up; diffusers the reverse.
    if match := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        level = levels - 1 - int(match[1])
        return f"decoder.up.{level}.block.{match[2]}.{_vae_resnet(match[3])}", value
    if match := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.*)", key):
        return f"decoder.up.{levels - 1 - int(match[1])}.upsample.{match[2]}", value
    return key, value


def _vae_resnet(rest: str) -> str:
    return rest.replace("conv_shortcut", "nin_shortcut")


def _clip_state(component: Path, prefix: str) -> dict[str, torch.Tensor]:
    # transformers >= 5.6 saves CLIPTextModel without the "text_model." level LDM keeps.
    return {
        prefix + (key if key.startswith("text_model.") else "text_model." + key): value
        for key, value in _weights(component).items()
    }


def _open_clip_state(component: Path, prefix: str) -> dict[str, torch.Tensor]:
    weights = {k.removeprefix("text_model."): v for k, v in _weights(component).items()}
    state = {
        prefix + "token_embedding.weight": weights.pop("embeddings.token_embedding.weight"),
        prefix + "positional_embedding": weights.pop("embeddings.position_embedding.weight"),
        # open-clip multiplies by the projection (x @ P); a Linear stores its transpose.
        prefix + "text_projection": weights.pop("text_projection.weight").T,
    }
    layers = {int(m[1]) for k in weights if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    for n in sorted(layers):
        source = f"encoder.layers.{n}."
        target = f"{prefix}transformer.resblocks.{n}."
        for kind in ("weight", "bias"):
            # open-clip keeps q, k and v as one packed in-projection.
            packed = [weights.pop(f"{source}self_attn.{p}_proj.{kind}") for p in "qkv"]
            state[f"{target}attn.in_proj_{kind}"] = torch.cat(packed)
            for ours, theirs in _OPEN_CLIP_LAYER.items():
                state[f"{target}{theirs}.{kind}"] = weights.pop(f"{source}{ours}.{kind}")
    for kind in ("weight", "bias"):
        state[f"{prefix}ln_final.{kind}"] = weights.pop(f"final_layer_norm.{kind}")
    weights.pop("embeddings.position_ids", None)
    if weights:
        raise ValueError(f"no open-clip name for text encoder weights {sorted(weights)}")
    return state
