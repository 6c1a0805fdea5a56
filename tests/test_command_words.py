"""The same command words on every front end, checked from one table (story/command_words):
Discord's options carry the table's names in its order, and one session of lines, typed
in the console and sent to Slack, leaves the two stories alike."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from discord import app_commands

from storyloom.bot.console import HELP, Console
from storyloom.bot.discord import server_cog, sharing
from storyloom.bot.discord.cog import StoryCog
from storyloom.bot.slack.commands import SUBCOMMANDS
from storyloom.story import service
from storyloom.story.command_words import COMMANDS, beat_range
from storyloom.story.errors import InvalidInput
from storyloom.story.model import Actor
from storyloom.story.service import Deps
from tests.story.fakes import FakeDatabase, FakeQueue

pytestmark = pytest.mark.timeout(60)

# one session, as a member would type it after `/story` on any front end
SESSION = (
    "cast Mira: a girl with red hair",
    "cast Tom a fisherman",
    "add [Mira] opens the door",
    "add a boat",
    "add a storm",
    "edit 2 a sunken boat",
    "move 3 1",
    "remove 2",
    "add [Tom] waves",
    "list 1",
    "look Mira",
    "look Tom reroll",
    "style manga",
    "render 1 2",
    "clip 2",
    "render",
    "redraw 1",
    "cancel",
    "undo",
)


def discord_commands() -> dict[str, app_commands.Command]:  # type: ignore[type-arg]
    """Every /story subcommand the Discord bot registers, by name."""
    found = [*StoryCog.__cog_app_commands__]
    found += [sharing.share, sharing.unshare, sharing.links, server_cog.settings, server_cog.audit]
    return {command.name: command for command in found}  # type: ignore[misc]


def test_discord_options_have_the_tables_names_in_its_order() -> None:
    commands = discord_commands()
    assert set(commands) == set(COMMANDS)
    for name, command in COMMANDS.items():
        options = [(p.name, not p.required) for p in commands[name].parameters]
        assert options == [(w.name, w.optional) for w in command.words], name


def test_the_console_help_writes_each_command_as_the_table_does() -> None:
    for command in COMMANDS.values():
        words = command.usage().removeprefix("/story ")
        assert words in HELP, words


def test_a_range_reads_first_and_last_in_either_form_and_refuses_anything_else() -> None:
    assert beat_range("render", "") == (None, None)
    assert beat_range("render", "3") == (3, None)  # from beat 3 on, as Discord's `first`
    assert beat_range("render", "2 5") == beat_range("render", "2-5") == (2, 5)
    for wrong in ("a", "1 2 3", "2 x"):
        with pytest.raises(InvalidInput, match=r"e\.g\. `render 2 5`"):
            beat_range("render", wrong)


def fresh_deps() -> Deps:
    ticks, seeds = itertools.count(), itertools.count(1000)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    database = FakeDatabase()
    return Deps(
        database,
        FakeQueue(database),
        frozenset({"comic", "manga"}),
        "comic",
        clock=lambda: start + timedelta(seconds=next(ticks)),
        new_seed=lambda: next(seeds),
    )


async def story_state(deps: Deps, actor: Actor) -> object:
    """What a session leaves: the story's style, beats, cast and jobs."""
    async with deps.db.reading() as uow:
        story = await uow.stories.get(actor.thread)
        assert story is not None
        beats = await uow.beats.page(story.id, 0, 100)
        cast = await uow.characters.list(story.id)
        jobs = await uow.jobs.recent(story.id, 100)
    return (
        story.style,
        [(b.position, b.text, b.variant) for b in beats],
        [(c.name, c.description, c.lock_state) for c in cast],
        sorted((j.id, j.kind, j.first_position, j.last_position, j.status) for j in jobs),
    )


async def test_one_session_typed_in_the_console_and_sent_to_slack_leaves_the_same_story() -> None:
    said: list[str] = []
    console = Console(fresh_deps(), said.append)
    await console.handle("/story new Harbour")
    slack = fresh_deps()
    actor = replace(console.actor)
    await service.new_story(slack, actor, "Harbour")
    for line in SESSION:
        before = len(said)
        await console.handle(f"/story {line}")
        answer = " ".join(said[before:])
        assert not answer.startswith(("usage:", "✗")), f"console refused {line!r}: {answer}"
        sub, _, args = line.partition(" ")
        await SUBCOMMANDS[sub](slack, actor, args, None)  # raises on words it refuses
    state = await story_state(slack, actor)
    assert await story_state(console.deps, console.actor) == state
    _, beats, _cast, jobs = state  # type: ignore[misc]
    assert [text for _, text, _ in beats] == ["a storm", "a sunken boat"]
    pages = [(kind.value, first, last) for _, kind, first, last, _ in jobs]
    assert [p for p in pages if p[0] in ("page", "clip")] == [
        ("page", 1, 2),  # `render 1 2`: beats 1 to 2 on both
        ("clip", 2, 3),  # `clip 2`: from beat 2 on
        ("page", 1, 3),
    ]
