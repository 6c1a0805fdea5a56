"""Prompt text and seeds for panels and identity images."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Protocol

from storyloom.story.grammar import TAG
from storyloom.story.limits import name_key

# Identity poses: explicit and varied, so a character sheet shows the character from
# more than one side (the reference design picked identity lines implicitly).
IDENTITY_POSES = (
    "portrait, facing the viewer",
    "full body, standing",
    "three-quarter view, walking",
    "profile view",
    "close-up, smiling",
    "sitting, relaxed",
    "waving",
    "seen from behind, looking over the shoulder",
)


class Described(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed derived from a parent seed and labels (stable across processes)."""
    text = ":".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def default_identity_prompts(description: str, count: int) -> tuple[str, ...]:
    """K identity prompts: the description in ``count`` standard poses, plain background."""
    if count > len(IDENTITY_POSES):
        raise ValueError(f"at most {len(IDENTITY_POSES)} identity images are supported")
    return tuple(f"{description}, {pose}, plain background" for pose in IDENTITY_POSES[:count])


def panel_prompt(scene: str, characters: Mapping[str, Described]) -> str:
    """The scene with every [Name] tag replaced by that character's description (names match
    as the story core matches them: case and spacing do not count)."""

    by_key = {name_key(name): character for name, character in characters.items()}

    def describe(match: re.Match[str]) -> str:
        name = " ".join(match.group(1).split())
        character = by_key.get(name_key(name))
        if character is None:
            return name
        return character.description or character.name

    return " ".join(TAG.sub(describe, scene).split())
