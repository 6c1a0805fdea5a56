"""`NAME.storyloom-character`: one character in one file, to move it between servers and
into story files.

A zip archive (stdlib, readable by any tool) holding `character.json` (the identity spec and
a format version), `sheet.png` when a sheet was drawn and `reference.png` when the member
gave a picture. Reading is bounded before anything is decompressed (file size, entry count,
each entry's declared size), so a zip bomb is refused, not unpacked; every problem is one
sentence. The pictures are only read here: callers re-encode them (the library's checks).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from storyloom.story.errors import InvalidInput, LimitExceeded
from storyloom.story.limits import MAX_DESCRIPTION_CHARS, clean_name, clean_text

FORMAT = "storyloom-character"
VERSION = 1
SUFFIX = ".storyloom-character"
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_JSON_BYTES = 64 * 1024
MAX_PICTURE_BYTES = 16 * 1024 * 1024
MAX_PROMPTS = 8
MAX_PROMPT_CHARS = 300
SPEC, SHEET, REFERENCE = "character.json", "sheet.png", "reference.png"
NOT_A_CHARACTER = "That file is not a storyloom character file (a .storyloom-character zip)."


@dataclass(frozen=True)
class CharacterFile:
    """A character as a file carries it."""

    name: str
    description: str
    style: str
    seed: int
    identity_prompts: tuple[str, ...] = ()
    locked: bool = False
    sheet: bytes | None = None
    reference: bytes | None = None


def file_name(name: str) -> str:
    """The file's name for a character: `Mira.storyloom-character` (spaces as dashes)."""
    return "-".join(name.split()) + SUFFIX


def pack(character: CharacterFile) -> bytes:
    """The character as a `.storyloom-character` file."""
    spec = {
        "format": FORMAT,
        "version": VERSION,
        "name": character.name,
        "description": character.description,
        "style": character.style,
        "seed": character.seed,
        "identity_prompts": list(character.identity_prompts),
        "locked": character.locked,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(SPEC, json.dumps(spec, ensure_ascii=False, indent=2))
        if character.sheet is not None:
            archive.writestr(SHEET, character.sheet)
        if character.reference is not None:
            archive.writestr(REFERENCE, character.reference)
    return out.getvalue()


def unpack(data: bytes) -> CharacterFile:
    """Read a `.storyloom-character` file, or raise a domain error with one sentence."""
    if len(data) > MAX_FILE_BYTES:
        raise LimitExceeded(
            f"The character file is {len(data) / 2**20:.1f} MiB; "
            f"the limit is {MAX_FILE_BYTES / 2**20:.0f} MiB."
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise InvalidInput(NOT_A_CHARACTER) from None
    with archive:
        entries = {info.filename: info for info in archive.infolist()}
        if SPEC not in entries or len(entries) > 3 or set(entries) - {SPEC, SHEET, REFERENCE}:
            raise InvalidInput(NOT_A_CHARACTER)
        spec = _spec(_read(archive, entries[SPEC], MAX_JSON_BYTES))
        pictures = {
            name: _read(archive, entries[name], MAX_PICTURE_BYTES)
            for name in (SHEET, REFERENCE)
            if name in entries
        }
    return CharacterFile(**spec, sheet=pictures.get(SHEET), reference=pictures.get(REFERENCE))


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    # the declared size is checked first, and the read is bounded too: a header can lie
    if info.file_size > limit:
        raise LimitExceeded(f"The character file's {info.filename} is larger than allowed.")
    try:
        with archive.open(info) as entry:
            data = entry.read(limit + 1)
    except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError):
        raise InvalidInput("The character file is damaged; export it again.") from None
    if len(data) > limit:
        raise LimitExceeded(f"The character file's {info.filename} is larger than allowed.")
    return data


def _spec(raw: bytes) -> dict[str, Any]:
    try:
        spec = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("The character file's character.json is not valid JSON.") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise InvalidInput(NOT_A_CHARACTER)
    version = spec.get("version")
    if version != VERSION:
        raise InvalidInput(
            f"This character file is version {version!r}; this storyloom reads version {VERSION}."
        )
    for key, kind in (("name", str), ("description", str), ("style", str), ("seed", int)):
        value = spec.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidInput(f"The character file's '{key}' is missing or not a {kind.__name__}.")
    seed = spec["seed"]
    if not 0 <= seed < 2**63:
        raise InvalidInput("The character file's 'seed' is out of range.")
    prompts = spec.get("identity_prompts", [])
    if (
        not isinstance(prompts, list)
        or len(prompts) > MAX_PROMPTS
        or not all(isinstance(p, str) and 0 < len(p.strip()) <= MAX_PROMPT_CHARS for p in prompts)
    ):
        raise InvalidInput(
            f"The character file's 'identity_prompts' must be at most {MAX_PROMPTS} texts."
        )
    if not isinstance(spec.get("locked", False), bool):
        raise InvalidInput("The character file's 'locked' must be true or false.")
    return {
        "name": clean_name(spec["name"]),
        "description": clean_text(spec["description"], "description", MAX_DESCRIPTION_CHARS),
        "style": spec["style"],
        "seed": seed,
        "identity_prompts": tuple(p.strip() for p in prompts),
        "locked": spec.get("locked", False),
    }
