"""/story settings and /story audit: a server's moderators keep its settings and read its
audit trail. Answers are private (only the moderator sees them). The commands join the
/story group of the story cog, so members see one command tree."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from storyloom.bot.discord.bot import StoryBot, reply
from storyloom.bot.discord.context import actor_of, defer, quote
from storyloom.story import server_admin
from storyloom.story.command_words import AUDIT_COUNT
from storyloom.story.server import KEYS, describe

SETTING_CHOICES = [app_commands.Choice(name=key, value=key) for key in KEYS]


def _bot(interaction: discord.Interaction[Any]) -> StoryBot:
    client = interaction.client
    assert isinstance(client, StoryBot)
    return client


@app_commands.command(name="settings", description="This server's settings (moderators)")
@app_commands.describe(
    setting="The setting to change (leave out to see them all)",
    value="Its new value, or 'default'",
)
@app_commands.choices(setting=SETTING_CHOICES)
async def settings(
    interaction: discord.Interaction[Any],
    setting: str | None = None,
    value: app_commands.Range[str, 1, 200] | None = None,
) -> None:
    await defer(interaction)
    deps, actor = _bot(interaction).deps, actor_of(interaction)
    if setting is None:
        shown = await server_admin.view_settings(deps, actor)
        lines = describe(shown, deps.default_style)
        await reply(interaction, "\n".join(quote(line) for line in lines))
        return
    if value is None:
        await reply(interaction, f"✗ Give a value for {setting}, or `default`.")
        return
    await server_admin.change_setting(deps, actor, setting, value)
    await reply(interaction, f"{setting} set to {quote(value)}")


@app_commands.command(name="audit", description="Recent actions on this server (moderators)")
@app_commands.describe(count="How many entries, newest first")
async def audit(
    interaction: discord.Interaction[Any], count: app_commands.Range[int, 1, 25] = AUDIT_COUNT
) -> None:
    await defer(interaction)
    entries = await server_admin.audit_log(_bot(interaction).deps, actor_of(interaction), count)
    lines = [quote(entry.describe()) for entry in entries] or ["No entries yet."]
    text = "\n".join(lines)
    await reply(interaction, text)  # reply() clips to Discord's 2,000 characters


async def setup(bot: commands.Bot) -> None:
    """Extension entry point: after the story cog, whose /story group these join."""
    group = bot.tree.get_command("story")
    assert isinstance(group, app_commands.Group), "load the story cog first"
    group.add_command(settings)
    group.add_command(audit)
