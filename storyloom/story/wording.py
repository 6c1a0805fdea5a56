"""How members read the core's states: the same words on every front end."""

from __future__ import annotations

from storyloom.story.model import LockState

LOOK_STATES = {
    LockState.DRAFT: "no sheet yet (look NAME draws one)",
    LockState.SHEET_RENDERED: "sheet drawn, not locked (look NAME lock keeps it)",
    LockState.LOCKED: "look locked",
}
LOOK_ACTIONS = ("lock", "reroll")  # `look NAME lock`, `look NAME reroll`


def look_state(state: LockState) -> str:
    """A character's look as members read it (not the stored `sheet_rendered`)."""
    return LOOK_STATES[state]


def look_action(args: str) -> tuple[str, str]:
    """`NAME [lock|reroll]` → (name, action); the name may have spaces, the action is the
    last word when it is one (default: lock, which draws a sheet first if none exists)."""
    name, _, last = args.strip().rpartition(" ")
    if last in LOOK_ACTIONS and name.strip():
        return name.strip(), last
    return args.strip(), "lock"


def cast_args(args: str) -> tuple[str, str]:
    """`NAME: DESCRIPTION` (a name with spaces) or `NAME DESCRIPTION` (a one-word name) →
    (name, description): the same words in the console and on Slack."""
    name, colon, description = args.partition(":")
    if not colon:
        name, _, description = args.strip().partition(" ")
    return name.strip(), description.strip()
