"""Story files: tags match the cast the way the story core matches names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from storyloom.app.storyfile import StoryFileError, load_story, parse_story
from storyloom.generation.styles import STYLE_NAMES


def story(*scenes: str, names: tuple[str, ...] = ("Old Tom",)) -> dict[str, object]:
    return {
        "title": "T",
        "characters": [{"name": n, "description": f"{n} look"} for n in names],
        "panels": [{"scene": s} for s in scenes],
    }


def test_tags_match_names_regardless_of_case_and_spacing() -> None:
    parsed = parse_story(story("[old  tom] waves", "[OLD TOM] sleeps"), STYLE_NAMES)
    assert [p.characters for p in parsed.panels] == [("Old Tom",), ("Old Tom",)]


def test_a_name_defined_twice_in_other_case_is_refused() -> None:
    with pytest.raises(StoryFileError, match="character 2: 'old tom' is defined twice"):
        parse_story(story("[Old Tom] waves", names=("Old Tom", "old tom")), STYLE_NAMES)


def test_seed_override_changes_every_derived_seed() -> None:
    a = parse_story(story("[Old Tom] waves"), STYLE_NAMES, seed=1)
    b = parse_story(story("[Old Tom] waves"), STYLE_NAMES, seed=2)
    assert a.seed == 1 and b.seed == 2
    assert a.characters[0].seed != b.characters[0].seed


def test_a_reference_picture_is_read_relative_to_the_story_file(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    Image.new("RGB", (40, 30), "red").save(tmp_path / "art" / "tom.jpg", format="JPEG")
    text = (
        'title = "T"\nidentity_mode = "csa+reference"\n'
        '[[characters]]\nname = "Old Tom"\ndescription = "a man"\nreference = "art/tom.jpg"\n'
        '[[panels]]\nscene = "[Old Tom] waves"\n'
    )
    (tmp_path / "story.toml").write_text(text)
    parsed = load_story(tmp_path / "story.toml", STYLE_NAMES)
    assert parsed.characters[0].reference == tmp_path / "art" / "tom.jpg"
    assert parsed.identity_mode == "csa+reference"
    assert parse_story(story("[Old Tom] waves"), STYLE_NAMES).identity_mode is None


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("gone.png", "character 1: reference gone.png cannot be read"),
        ("notes.png", "character 1: reference notes.png: The reference must be a PNG"),
        (7, "character 1: 'reference' must be the path of a picture"),
    ],
)
def test_a_bad_reference_picture_fails_the_file_with_one_line(
    tmp_path: Path, reference: object, message: str
) -> None:
    (tmp_path / "notes.png").write_text("not a picture")
    data = story("[Old Tom] waves")
    data["characters"][0]["reference"] = reference  # type: ignore[index]
    with pytest.raises(StoryFileError, match=re.escape(message)):
        parse_story(data, STYLE_NAMES, base=tmp_path)


def test_an_unknown_identity_mode_is_refused() -> None:
    data = {**story("[Old Tom] waves"), "identity_mode": "reference"}
    with pytest.raises(StoryFileError, match="'identity_mode' must be"):
        parse_story(data, STYLE_NAMES)
