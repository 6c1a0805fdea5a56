"""Story files take characters exported from a server's library: `from = "x.storyloom-character"`,
relative to the story file, keeping the character's own seed (so the same identity spec)."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from storyloom.app.render_story import CharacterSpec
from storyloom.app.storyfile import StoryFileError, load_story
from storyloom.generation.reference_image import clean_reference, reference_name
from storyloom.jobs.artifacts import character_specs
from storyloom.story.character_file import CharacterFile, pack
from storyloom.story.model import Character, LockState

STYLES = frozenset({"comic", "manga"})
MIRA = CharacterFile("Mira", "a girl with short red hair", "comic", 123456, locked=True)


def story(tmp_path: Path, characters: str) -> Path:
    path = tmp_path / "stories" / "tale.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'title = "Tale"\nseed = 9\n{characters}\n[[panels]]\nscene = "[Mira] waves"\n')
    return path


def test_a_character_from_a_file_keeps_its_name_description_and_seed(tmp_path: Path) -> None:
    (tmp_path / "stories" / "cast").mkdir(parents=True)
    (tmp_path / "stories" / "cast" / "mira.storyloom-character").write_bytes(pack(MIRA))
    loaded = load_story(
        story(tmp_path, '[[characters]]\nfrom = "cast/mira.storyloom-character"\n'), STYLES
    )
    (mira,) = loaded.characters
    assert (mira.name, mira.description, mira.seed) == (MIRA.name, MIRA.description, MIRA.seed)
    # the renderer gets the spec the chat character it was saved from had
    saved = Character(1, 1, "Mira", MIRA.description, LockState.LOCKED, MIRA.seed, "u",
                      datetime.now(UTC), datetime.now(UTC))  # fmt: skip
    spec = CharacterSpec(mira.name, mira.description, mira.seed, mira.identity_prompts)
    assert character_specs([saved])["Mira"] == spec


def test_fields_in_the_story_file_override_the_character_files(tmp_path: Path) -> None:
    (tmp_path / "stories").mkdir()
    (tmp_path / "stories" / "mira.storyloom-character").write_bytes(pack(MIRA))
    lines = '[[characters]]\nfrom = "mira.storyloom-character"\ndescription = "older now"\n'
    (mira,) = load_story(story(tmp_path, lines), STYLES).characters
    assert mira.description == "older now" and mira.seed == MIRA.seed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "character 1: gone.storyloom-character could not be read"),
        (b"not a zip", "character 1: gone.storyloom-character: That file is not a storyloom"),
        (
            pack(CharacterFile("Mira", "a girl", "comic", 1, reference=b"\x89PNG")),
            "gone.storyloom-character: its reference picture: The reference must be a PNG",
        ),
    ],
)
def test_a_bad_character_file_names_the_character_and_the_problem(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    (tmp_path / "stories").mkdir()
    if content is not None:
        (tmp_path / "stories" / "gone.storyloom-character").write_bytes(content)
    path = story(tmp_path, '[[characters]]\nfrom = "gone.storyloom-character"\n')
    with pytest.raises(StoryFileError, match=message):
        load_story(path, STYLES)


def test_a_character_files_reference_picture_is_drawn_as_the_same_identity(
    tmp_path: Path,
) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (32, 48), (200, 40, 40)).save(picture, format="JPEG")
    clean = clean_reference(picture.getvalue())  # as the library kept it
    (tmp_path / "stories").mkdir()
    saved = dataclasses.replace(MIRA, reference=clean)
    (tmp_path / "stories" / "mira.storyloom-character").write_bytes(pack(saved))
    lines = '[[characters]]\nfrom = "mira.storyloom-character"\n'
    (mira,) = load_story(story(tmp_path, lines), STYLES).characters
    assert mira.reference is not None
    # the renderer names the identity by the clean bytes: the library's name, wherever it is
    assert reference_name(clean_reference(mira.reference.read_bytes())) == reference_name(clean)
    (again,) = load_story(story(tmp_path, lines), STYLES).characters
    assert again.reference == mira.reference
