from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from storyloom.story.errors import StoryError
from storyloom.story.grammar import Line, format, parse


def test_tags_caption_and_dialogue_are_split() -> None:
    beat = parse('[Mira] and [Old Tom] light the lamp # The sea went quiet. Mira: "We did it!"')
    assert beat.characters == ("Mira", "Old Tom")
    assert beat.scene == "[Mira] and [Old Tom] light the lamp"
    assert beat.prompt == "Mira and Old Tom light the lamp"
    assert beat.narration == "The sea went quiet."
    assert beat.dialogue == (Line("Mira", "We did it!"),)


def test_tag_repeated_in_another_case_counts_once() -> None:
    assert parse("[Mira] waves at [mira] in the mirror").characters == ("Mira",)


def test_brackets_that_are_not_names_stay_text() -> None:
    beat = parse("a sign reads [!!!] and [] # [sic]")
    assert beat.characters == ("sic",)
    assert "[!!!]" in beat.scene


def test_hash_inside_a_word_is_not_a_caption() -> None:
    beat = parse("room #4 on C# street")
    assert beat.caption == "" and beat.scene == "room #4 on C# street"


def test_caption_only_beat() -> None:
    beat = parse('# Tom: "Who let the sea in?"')
    assert beat.scene == "" and beat.dialogue == (Line("Tom", "Who let the sea in?"),)


def test_speaker_must_open_a_clause() -> None:
    beat = parse('x # and then Mira said: "hello" Later, Tom: “bye”')
    assert [line.speaker for line in beat.dialogue] == ["said", "Tom"]
    assert beat.narration == "and then Mira Later,"


@given(st.text(max_size=600))
def test_parse_never_crashes_and_format_is_stable(text: str) -> None:
    try:
        beat = parse(text)
    except StoryError:  # the only failure the grammar may report
        return
    again = parse(format(beat))
    assert again == beat
    assert format(again) == format(beat)


_word = st.text(string.ascii_letters + "éß", min_size=1, max_size=8)
_name = st.lists(_word, min_size=1, max_size=3).map(" ".join).filter(lambda n: len(n) <= 32)
_plain = st.lists(_word, min_size=1, max_size=6).map(" ".join)
_said = st.text(string.ascii_letters + " ,!?'", min_size=1, max_size=30).filter(str.strip)


@given(
    names=st.lists(_name, min_size=1, max_size=4, unique_by=str.casefold),
    scene=_plain,
    narration=_plain,
    lines=st.lists(st.tuples(_name, _said), max_size=3),
)
def test_built_beats_round_trip_exactly(
    names: list[str], scene: str, narration: str, lines: list[tuple[str, str]]
) -> None:
    tags = " ".join(f"[{n}]" for n in names)
    dialogue = " ".join(f'{who}: "{said}"' for who, said in lines)
    caption = f"{narration}. {dialogue}".strip()
    text = f"{tags} {scene} # {caption}"

    beat = parse(text)

    assert format(beat) == text
    assert beat.characters == tuple(names)
    assert beat.dialogue == tuple(Line(who, " ".join(said.split())) for who, said in lines)
    assert beat.narration == f"{narration}."
    assert beat.prompt == f"{' '.join(names)} {scene}"
