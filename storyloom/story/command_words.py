"""The words of every `/story` command, in one table: the console and Slack read a line
with them, Discord names its typed options after them, in the same order.

A member who learned `/story render 2 5` in the console types the same on Slack and finds
the options `first` and `last` on Discord: one grammar, three front ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from storyloom.story.errors import InvalidInput


@dataclass(frozen=True)
class Word:
    """One argument of a command: its name (Discord's option name), whether it may be left
    out, and how the usage line writes it when not as its name in capitals."""

    name: str
    optional: bool = False
    shown: str | None = None

    def usage(self) -> str:
        """The argument as a usage line shows it."""
        text = self.shown or self.name.upper()
        return f"[{text}]" if self.optional else text


@dataclass(frozen=True)
class Command:
    """A subcommand and its arguments, in order."""

    name: str
    words: tuple[Word, ...] = ()

    def usage(self) -> str:
        """`/story NAME ARG [ARG]`, as the help and the refusals write it."""
        return " ".join(["/story", self.name, *(word.usage() for word in self.words)])


_RANGE = (Word("first", optional=True), Word("last", optional=True))
COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        Command("new", (Word("title"),)),
        Command("add", (Word("text"),)),
        Command("edit", (Word("beat"), Word("text"))),
        Command("remove", (Word("beat"),)),
        Command("move", (Word("beat"), Word("to"))),
        Command("undo"),
        Command("list", (Word("page", optional=True),)),
        Command(
            "cast",
            (
                Word("name", shown="NAME:"),
                # Left out: the server library's character of that name.
                Word("description", optional=True),
                # Discord's attachment option; the console's file; Slack: a file shared along.
                Word("picture", optional=True, shown="--reference PICTURE"),
            ),
        ),
        Command("look", (Word("name"), Word("action", optional=True, shown="lock|reroll"))),
        Command("style", (Word("name"),)),
        Command("render", _RANGE),
        Command("clip", _RANGE),
        Command("redraw", (Word("beat"),)),
        Command("status"),
        Command("cancel", (Word("job", optional=True),)),
        Command("export"),
        Command("delete"),
        Command("share"),
        Command("unshare", (Word("link", optional=True),)),
        Command("links"),
        Command("settings", (Word("setting", optional=True), Word("value", optional=True))),
        Command("audit", (Word("count", optional=True),)),
    )
}
AUDIT_COUNT = 10  # entries `audit` shows when not told how many (Discord allows 1 to 25)


def beat_range(name: str, args: str) -> tuple[int | None, int | None]:
    """`render`/`clip`'s arguments: nothing (every beat), `FIRST`, `FIRST LAST`, or
    `FIRST-LAST` (the console's older form, still read)."""
    words = args.replace("-", " ").split()
    if len(words) > 2 or not all(word.isdigit() for word in words):
        raise InvalidInput(f"Give the first and last beat, e.g. `{name} 2 5`, or none for all.")
    numbers = [int(word) for word in words]
    if not numbers:
        return None, None
    return numbers[0], numbers[-1] if len(numbers) == 2 else None
