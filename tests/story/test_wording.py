"""The same command words on every front end: `look NAME [lock|reroll]`, `cast NAME: …`."""

from __future__ import annotations

from storyloom.story.model import LockState
from storyloom.story.wording import cast_args, look_action, look_state


def test_look_takes_a_name_with_spaces_and_an_optional_action() -> None:
    assert look_action("Mira") == ("Mira", "lock")
    assert look_action("Mira Rose lock") == ("Mira Rose", "lock")
    assert look_action("Mira Rose reroll") == ("Mira Rose", "reroll")
    assert look_action("reroll") == ("reroll", "lock")  # a character called Reroll


def test_cast_takes_the_console_and_the_slack_form() -> None:
    assert cast_args("Mira Rose: a girl in a raincoat") == ("Mira Rose", "a girl in a raincoat")
    assert cast_args("Mira a girl in a raincoat") == ("Mira", "a girl in a raincoat")


def test_states_are_said_in_members_words() -> None:
    assert "sheet_rendered" not in look_state(LockState.SHEET_RENDERED)
    assert "look NAME lock" in look_state(LockState.SHEET_RENDERED)
