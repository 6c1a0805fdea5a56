"""Autocomplete for /story options: the thread's cast, beat numbers, open jobs and styles.

Suggestions are read from the core like any command; outside a story there are none
(autocomplete cannot show an error, so a domain error becomes an empty list).
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from storyloom.bot.discord.bot import StoryBot
from storyloom.bot.discord.context import actor_of
from storyloom.story import service
from storyloom.story.errors import StoryError
from storyloom.story.model import StoryOverview
from storyloom.story.service import Deps

MAX_CHOICES = 25  # Discord shows at most 25 suggestions


def _deps(interaction: discord.Interaction[Any]) -> Deps:
    client = interaction.client
    assert isinstance(client, StoryBot)
    return client.deps


async def _overview(interaction: discord.Interaction[Any]) -> StoryOverview | None:
    try:
        return await service.status(_deps(interaction), actor_of(interaction))
    except StoryError:
        return None


async def cast_names(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """The story's characters whose name contains what was typed."""
    overview = await _overview(interaction)
    if overview is None:
        return []
    names = [c.name for c in overview.characters if current.casefold() in c.name.casefold()]
    return [app_commands.Choice(name=n, value=n) for n in names[:MAX_CHOICES]]


async def beat_numbers(
    interaction: discord.Interaction[Any], current: int | str
) -> list[app_commands.Choice[int]]:
    """Beat numbers starting with what was typed, newest first."""
    overview = await _overview(interaction)
    if overview is None:
        return []
    typed = str(current or "")
    numbers = [n for n in range(overview.beat_count, 0, -1) if str(n).startswith(typed)]
    return [app_commands.Choice(name=f"beat {n}", value=n) for n in numbers[:MAX_CHOICES]]


async def open_jobs(
    interaction: discord.Interaction[Any], current: int | str
) -> list[app_commands.Choice[int]]:
    """The story's queued and running jobs."""
    overview = await _overview(interaction)
    if overview is None:
        return []
    typed = str(current or "")
    jobs = [j for j in overview.jobs if j.status.active and str(j.id).startswith(typed)]
    return [
        app_commands.Choice(name=f"#{j.id} {j.kind.value} ({j.status.value})", value=j.id)
        for j in jobs[:MAX_CHOICES]
    ]


async def style_names(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """The style presets containing what was typed."""
    styles = sorted(_deps(interaction).styles)
    shown = [s for s in styles if current.casefold() in s.casefold()]
    return [app_commands.Choice(name=s, value=s) for s in shown[:MAX_CHOICES]]
