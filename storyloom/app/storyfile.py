"""Story files (TOML) for `storyloom render`: read, check, and turn into render specs.

title = "The Lighthouse"
style = "comic"          # optional, a style preset
seed = 42                # optional
identity_mode = "csa"    # optional: "csa" or "csa+reference" (default: the setting)

[[characters]]
name = "Mira"
description = "a girl with short red hair and a green raincoat"
identity_prompts = ["..."]   # optional: the K identity poses, explicit
reference = "mira.png"       # optional: a picture the look is conditioned on (PNG, JPEG,
                             # WebP; relative to the story file)

[[characters]]
from = "ada.storyloom-character"  # a character exported from a server's library (the path
                                  # is relative to this file): its name, description, seed
                                  # and poses; fields given here override the file's

[[panels]]
scene = "[Mira] walks along a stormy beach"
caption = 'Mira: "Someone has to keep the light on."'
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyloom.generation.prompts import derive_seed
from storyloom.generation.reference_image import clean_reference, reference_name
from storyloom.story.character_file import CharacterFile, unpack
from storyloom.story.errors import InvalidInput, LimitExceeded, StoryError
from storyloom.story.grammar import tagged_names
from storyloom.story.limits import name_key

MAX_PANELS = 300
MAX_CHARACTERS = 8
MAX_PER_PANEL = 4
MAX_TEXT = 500
NAME = re.compile(r"^[^\W_](?:[^\W_]| ){0,31}$")
IDENTITY_MODES = ("csa", "csa+reference")


class StoryFileError(ValueError):
    """A story file that cannot be rendered; the message names the problem in one line."""


@dataclass(frozen=True)
class StoryCharacter:
    name: str
    description: str
    seed: int
    identity_prompts: tuple[str, ...] = ()
    reference: Path | None = None  # checked: a picture clean_reference accepts


@dataclass(frozen=True)
class StoryPanel:
    number: int  # 1-based, as the author counts
    scene: str
    caption: str
    characters: tuple[str, ...]


@dataclass(frozen=True)
class StoryFile:
    title: str
    style: str
    seed: int
    characters: tuple[StoryCharacter, ...]
    panels: tuple[StoryPanel, ...]
    identity_mode: str | None = None  # None: the identity_mode setting


def _text(table: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = table.get(key, "" if not required else None)
    if value is None:
        raise StoryFileError(f"{where}: missing field '{key}'")
    if not isinstance(value, str):
        raise StoryFileError(f"{where}: '{key}' must be text")
    if len(value) > MAX_TEXT:
        raise StoryFileError(f"{where}: '{key}' is longer than {MAX_TEXT} characters")
    return value.strip()


def _character_file(raw: dict[str, Any], where: str, base: Path | None) -> CharacterFile | None:
    """The `.storyloom-character` file a character table names with `from`, if it does."""
    name = raw.get("from")
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip():
        raise StoryFileError(f"{where}: 'from' must be the path of a .storyloom-character file")
    path = (base or Path.cwd()) / name.strip()
    try:
        loaded = unpack(path.read_bytes())
    except OSError:
        raise StoryFileError(f"{where}: {name} could not be read") from None
    except StoryError as error:
        raise StoryFileError(f"{where}: {name}: {error.message}") from None
    return loaded


def _unpacked_reference(picture: bytes, where: str, name: str) -> Path:
    """A character file's reference picture as a file the renderer reads: kept by its hash
    in the temporary folder (the identity is named by the clean bytes, not the path, so it
    is the same identity as the library character's the file was exported from)."""
    try:
        clean = clean_reference(picture)
    except (InvalidInput, LimitExceeded) as error:
        raise StoryFileError(f"{where}: {name}: its reference picture: {error}") from None
    folder = Path(tempfile.gettempdir()) / "storyloom-references"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / reference_name(clean)
    if not path.is_file():
        partial = path.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(clean)
        partial.replace(path)  # whole or absent, if two renders unpack it at once
    return path


def _reference(raw: dict[str, Any], where: str, base: Path) -> Path | None:
    """The character's reference picture, read and checked now (a bad one fails the file)."""
    value = raw.get("reference")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise StoryFileError(f"{where}: 'reference' must be the path of a picture")
    path = base / value.strip()
    try:
        clean_reference(path.read_bytes())
    except OSError:
        raise StoryFileError(f"{where}: reference {value} cannot be read") from None
    except (InvalidInput, LimitExceeded) as error:
        raise StoryFileError(f"{where}: reference {value}: {error}") from None
    return path


def parse_story(
    data: dict[str, Any],
    styles: frozenset[str],
    seed: int | None = None,
    base: Path | None = None,
) -> StoryFile:
    """Check a decoded story file and build a StoryFile; raise StoryFileError on the first problem.

    ``seed`` overrides the file's seed (character and panel seeds derive from it, except a
    character from a `.storyloom-character` file, which keeps its own); ``base`` is the
    folder reference pictures and character files are relative to (the story file's).
    """
    title = _text(data, "title", "story")
    if not title:
        raise StoryFileError("story: 'title' is empty")
    style = _text(data, "style", "story", required=False) or "comic"
    if style not in styles:
        raise StoryFileError(
            f"story: unknown style '{style}' (styles: {', '.join(sorted(styles))})"
        )
    seed = data.get("seed", 0) if seed is None else seed
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise StoryFileError("story: 'seed' must be a whole number ≥ 0")
    identity_mode = data.get("identity_mode")
    if identity_mode is not None and identity_mode not in IDENTITY_MODES:
        raise StoryFileError('story: \'identity_mode\' must be "csa" or "csa+reference"')

    raw_characters = data.get("characters", [])
    if not isinstance(raw_characters, list):
        raise StoryFileError("story: 'characters' must be a list of [[characters]] tables")
    if len(raw_characters) > MAX_CHARACTERS:
        raise StoryFileError(
            f"story: too many characters ({len(raw_characters)}; at most {MAX_CHARACTERS})"
        )
    characters: dict[str, StoryCharacter] = {}
    keys: dict[str, str] = {}  # name key (case/spacing-free) → name as cast
    for i, raw in enumerate(raw_characters, 1):
        where = f"character {i}"
        loaded = _character_file(raw, where, base)
        if loaded is not None:
            raw = {"name": loaded.name, "description": loaded.description,
                   "identity_prompts": list(loaded.identity_prompts), **raw}  # fmt: skip
        name = _text(raw, "name", where)
        if not NAME.match(name):
            raise StoryFileError(f"{where}: name '{name}' must be 1–32 letters, digits or spaces")
        if name_key(name) in keys:
            raise StoryFileError(f"{where}: '{name}' is defined twice")
        keys[name_key(name)] = name
        prompts = raw.get("identity_prompts", [])
        if not isinstance(prompts, list) or not all(
            isinstance(p, str) and p.strip() for p in prompts
        ):
            raise StoryFileError(f"{where}: 'identity_prompts' must be a list of non-empty texts")
        characters[name] = StoryCharacter(
            name=name,
            description=_text(raw, "description", where),
            # a saved character keeps its seed: the same spec, the same locked look
            seed=loaded.seed if loaded is not None else derive_seed(seed, "character", name),
            identity_prompts=tuple(p.strip() for p in prompts),
            reference=(
                _unpacked_reference(loaded.reference, where, str(raw.get("from")))
                if "reference" not in raw and loaded is not None and loaded.reference is not None
                else _reference(raw, where, base or Path("."))
            ),
        )

    raw_panels = data.get("panels", [])
    if not isinstance(raw_panels, list) or not raw_panels:
        raise StoryFileError("story: no panels (add [[panels]] tables with a 'scene')")
    if len(raw_panels) > MAX_PANELS:
        raise StoryFileError(f"story: too many panels ({len(raw_panels)}; at most {MAX_PANELS})")
    panels = []
    cast = ", ".join(characters) or "nobody"
    for number, raw in enumerate(raw_panels, 1):
        where = f"panel {number}"
        scene = _text(raw, "scene", where)
        if not scene:
            raise StoryFileError(f"{where}: 'scene' is empty")
        tags = tagged_names(scene)
        for tag in tags:
            if name_key(tag) not in keys:
                raise StoryFileError(f"{where}: unknown character [{tag}] (cast: {cast})")
        names = tuple(keys[name_key(tag)] for tag in tags)
        if len(names) > MAX_PER_PANEL:
            raise StoryFileError(
                f"{where}: {len(names)} characters; at most {MAX_PER_PANEL} per panel"
            )
        panels.append(
            StoryPanel(number, scene, _text(raw, "caption", where, required=False), names)
        )
    return StoryFile(title, style, seed, tuple(characters.values()), tuple(panels), identity_mode)


def load_story(path: Path, styles: frozenset[str], seed: int | None = None) -> StoryFile:
    """Read and check a story file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoryFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise StoryFileError(f"{path} is a folder; give a story file (.toml)") from None
    except PermissionError:
        raise StoryFileError(f"{path}: not readable (permission denied)") from None
    except OSError as error:  # a device, a broken mount: say which file and why, briefly
        reason = error.strerror or type(error).__name__
        raise StoryFileError(f"{path}: could not be read ({reason})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise StoryFileError(f"{path}: not valid TOML ({error})") from None
    return parse_story(data, styles, seed, base=path.parent)
