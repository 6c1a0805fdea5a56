"""/story share, /story unshare and /story links: added to the /story group by this
extension (loaded after the cog), so the cog itself stays as it is.

Answers are ephemeral: a share link is a key to the story, shown to whoever asked only.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from storyloom.bot import share_text
from storyloom.bot.discord.bot import StoryBot, reply
from storyloom.bot.discord.context import actor_of, defer, quote
from storyloom.storage.share_links import share_links
from storyloom.story import sharing


def _bot(interaction: discord.Interaction[Any]) -> StoryBot:
    client = interaction.client
    assert isinstance(client, StoryBot)
    return client


@app_commands.command(name="share", description="A link anyone can read the comic at (owner)")
async def share(interaction: discord.Interaction[Any]) -> None:
    await defer(interaction)
    bot = _bot(interaction)
    new = await sharing.share(bot.deps, share_links, actor_of(interaction), bot.public_base_url)
    await reply(interaction, share_text.shared(new))


@app_commands.command(name="unshare", description="Turn off this story's share links")
@app_commands.describe(link="One link's number (moderators: any link of the server)")
async def unshare(
    interaction: discord.Interaction[Any], link: app_commands.Range[int, 1] | None = None
) -> None:
    await defer(interaction)
    revoked = await sharing.unshare(
        _bot(interaction).deps, share_links, actor_of(interaction), link
    )
    await reply(interaction, share_text.revoked(revoked))


@app_commands.command(name="links", description="Every live share link of this server (mods)")
async def links(interaction: discord.Interaction[Any]) -> None:
    await defer(interaction)
    live = await sharing.server_links(_bot(interaction).deps, share_links, actor_of(interaction))
    await reply(interaction, share_text.listed(live, quote))


async def setup(bot: commands.Bot) -> None:
    """Extension entry point: add the commands to the cog's /story group."""
    group = bot.tree.get_command("story")
    assert isinstance(group, app_commands.Group), "load storyloom.bot.discord.cog first"
    group.add_command(share)
    group.add_command(unshare)
    group.add_command(links)
