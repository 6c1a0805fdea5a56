"""Story files: tags match the cast the way the story core matches names."""

from __future__ import annotations

import pytest

from storyloom.app.storyfile import StoryFileError, parse_story
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
