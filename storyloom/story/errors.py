"""Domain errors: each carries one short sentence an adapter can show the member as is."""

from __future__ import annotations

from collections.abc import Iterable


class StoryError(Exception):
    """Base of every domain error; `message` is user-facing and safe to post (after escaping)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(StoryError):
    """The story, beat, character or job does not exist in this thread."""


class Forbidden(StoryError):
    """The member may not do this here."""


class LimitExceeded(StoryError):
    """A size or count limit was reached."""


class InvalidInput(StoryError):
    """The input does not follow the rules (grammar, names, ranges, styles)."""


class Conflict(StoryError):
    """The request clashes with the current state (a story already exists, a look is locked)."""


class UnknownCharacter(InvalidInput):
    """A beat names someone who is not in the cast; the message lists the cast."""

    def __init__(self, names: Iterable[str], cast: Iterable[str]) -> None:
        unknown = ", ".join(sorted(set(names)))
        known = ", ".join(sorted(cast))
        hint = f"The cast is: {known}." if known else "The cast is empty."
        super().__init__(
            f"Unknown character: {unknown}. {hint} Add one with /story cast NAME DESCRIPTION."
        )
        self.names = tuple(sorted(set(names)))
        self.cast = tuple(sorted(cast))
