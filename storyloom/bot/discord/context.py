"""Discord → core: who is speaking, where, and how the bot's replies are sent."""

from __future__ import annotations

from typing import Any

import discord

from storyloom.story.escaping import escape_discord
from storyloom.story.model import Actor

# A beat can never ping anyone: every message the bot sends uses this.
NO_PINGS = discord.AllowedMentions.none()


def actor_of(interaction: discord.Interaction[Any]) -> Actor:
    """The core's Actor: the guild, the thread's parent channel, the thread, the member."""
    channel = interaction.channel
    thread_id = interaction.channel_id or 0
    parent_id = getattr(channel, "parent_id", None) or thread_id
    user = interaction.user
    # the member's resolved permissions in this channel, as Discord computed them
    permissions = interaction.permissions
    moderator = permissions.manage_threads or permissions.manage_messages
    roles = getattr(user, "roles", ())  # a Member's roles; none in a DM
    return Actor(
        workspace_id=str(interaction.guild_id or "dm"),
        channel_id=str(parent_id),
        thread_id=str(thread_id),
        member_id=str(user.id),
        display_name=user.display_name,
        is_moderator=moderator,
        roles=frozenset(str(role.id) for role in roles),
        age_restricted=_age_restricted(channel),
    )


def _age_restricted(channel: object) -> bool:
    """Discord's nsfw flag: on the channel, or on a thread's parent (a parent not in the
    cache counts as not age-restricted, the safe side)."""
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


def quote(text: str) -> str:
    """Member text shown literally: markdown escaped, mentions defused."""
    return escape_discord(text)


ALREADY_ACKNOWLEDGED = 40060  # Discord's code for a second acknowledgement


async def defer(interaction: discord.Interaction[Any]) -> None:
    """Acknowledge privately (Discord wants it within 3 s), unless the bot already did while
    it started (early.py). The same interaction delivered twice was acknowledged by its
    first delivery: Discord refuses the second acknowledgement, and the answer goes on as
    a follow-up."""
    if interaction.response.is_done():
        return
    try:
        await interaction.response.defer(ephemeral=True)
    except discord.HTTPException as error:
        if error.code != ALREADY_ACKNOWLEDGED:
            raise
        # discord.py marks a response done only when its own request succeeded
        interaction.response._response_type = (
            discord.InteractionResponseType.deferred_channel_message
        )
