"""Identity consistency scores of a rendered story: CLIP-I, DINO and CLIP-T.

- CLIP-I (sheet): cosine similarity of CLIP image embeddings between each panel that shows
  a character and the character's first sheet image; (panels): the mean over pairs of
  panels that show it. Whole panels are compared (no detector crops them), so a panel
  with two characters counts for both.
- DINO (sheet, panels): the same with a DINO model's CLS embedding, where one is set.
- CLIP-T: cosine similarity of each panel's CLIP image and text embeddings (the scene,
  tags turned into names): how well the panel follows its prompt.

Encoders load like models do: a local folder, a cached hub id, the hub when it answers,
or a built-in tiny one (random weights, for tests: the numbers mean nothing there).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from storyloom.generation.models import ModelLoadError, hub_reachable
from storyloom.generation.tiny_encoders import TINY_ENCODERS, build_tiny_encoder

_TAG = re.compile(r"\[([^\[\]]+)\]")


@dataclass
class CharacterScores:
    panels: int
    clip_i_sheet: float
    clip_i_panels: float | None  # None with fewer than two panels
    dino_sheet: float | None = None
    dino_panels: float | None = None


@dataclass
class StoryScores:
    characters: dict[str, CharacterScores] = field(default_factory=dict)
    clip_t: dict[int, float] = field(default_factory=dict)  # panel index -> score

    @property
    def clip_t_mean(self) -> float:
        return sum(self.clip_t.values()) / len(self.clip_t) if self.clip_t else float("nan")


class Encoders:
    """CLIP (images and text) and, optionally, DINO (images), loaded once."""

    def __init__(self, clip_model: str, dino_model: str, cache_dir: Path):
        from transformers import AutoImageProcessor, AutoModel, CLIPModel, CLIPProcessor

        self.clip: Any = _pretrained(CLIPModel, clip_model, cache_dir)
        self.clip_processor: Any = _pretrained(CLIPProcessor, clip_model, cache_dir)
        self.dino: Any = None
        self.dino_processor: Any = None
        if dino_model:
            self.dino = _pretrained(AutoModel, dino_model, cache_dir)
            self.dino_processor = _pretrained(AutoImageProcessor, dino_model, cache_dir)

    @torch.inference_mode()
    def clip_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        pixels = self.clip_processor(images=list(images), return_tensors="pt")
        return _unit(_tensor(self.clip.get_image_features(**pixels)))

    @torch.inference_mode()
    def clip_texts(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.clip_processor(
            text=list(texts), return_tensors="pt", padding=True, truncation=True
        )
        return _unit(_tensor(self.clip.get_text_features(**tokens)))

    @torch.inference_mode()
    def dino_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        pixels = self.dino_processor(images=list(images), return_tensors="pt")
        return _unit(self.dino(**pixels).last_hidden_state[:, 0])


def score_story(
    encoders: Encoders,
    sheets: Mapping[str, Image.Image],
    panels: Sequence[tuple[int, str, tuple[str, ...], Image.Image]],
) -> StoryScores:
    """Scores of ``panels`` (index, scene, characters shown, image) against ``sheets``
    (each character's first sheet image)."""
    scores = StoryScores()
    images = [image for _, _, _, image in panels]
    clip = encoders.clip_images(images)
    texts = encoders.clip_texts([_TAG.sub(r"\1", scene) for _, scene, _, _ in panels])
    for row, (index, _, _, _) in enumerate(panels):
        scores.clip_t[index] = float(clip[row] @ texts[row])
    dino = encoders.dino_images(images) if encoders.dino is not None else None
    names = list(sheets)
    sheet_clip = encoders.clip_images([sheets[n] for n in names])
    sheet_dino = encoders.dino_images([sheets[n] for n in names]) if dino is not None else None
    for i, name in enumerate(names):
        rows = [row for row, (_, _, shown, _) in enumerate(panels) if name in shown]
        if not rows:
            continue
        result = CharacterScores(
            panels=len(rows),
            clip_i_sheet=_mean(float(clip[r] @ sheet_clip[i]) for r in rows),
            clip_i_panels=_pairs(clip, rows),
        )
        if dino is not None and sheet_dino is not None:
            result.dino_sheet = _mean(float(dino[r] @ sheet_dino[i]) for r in rows)
            result.dino_panels = _pairs(dino, rows)
        scores.characters[name] = result
    return scores


def _pairs(embeddings: torch.Tensor, rows: list[int]) -> float | None:
    pairs = list(itertools.combinations(rows, 2))
    if not pairs:
        return None
    return _mean(float(embeddings[a] @ embeddings[b]) for a, b in pairs)


def _mean(values: Any) -> float:
    values = list(values)
    return sum(values) / len(values)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=-1)


def _tensor(output: Any) -> torch.Tensor:
    """Newer transformers return a model output from get_*_features; older ones a tensor."""
    if isinstance(output, torch.Tensor):
        return output
    return output.pooler_output


def _pretrained(kind: Any, model: str, cache_dir: Path) -> Any:
    """``kind.from_pretrained`` of a tiny name, a local folder, or a hub id (cache first)."""
    if model in TINY_ENCODERS:
        return kind.from_pretrained(build_tiny_encoder(model, cache_dir), local_files_only=True)
    if Path(model).expanduser().is_dir():
        return kind.from_pretrained(Path(model).expanduser(), local_files_only=True)
    try:
        return kind.from_pretrained(model, local_files_only=True)
    except OSError:
        if not hub_reachable():
            raise ModelLoadError(
                f"could not load the scoring model {model}: not in the local cache and the "
                "model hub is unreachable; set STORYLOOM_EVAL_CLIP_MODEL / "
                "STORYLOOM_EVAL_DINO_MODEL to a local folder."
            ) from None
    try:
        return kind.from_pretrained(model)
    except OSError as error:
        raise ModelLoadError(f"could not load the scoring model {model}: {error}") from None
