"""The Discord bot: a `commands.Bot` whose `setup_hook` loads the /story cog and buttons.

This module is imported before the gateway connects (start.py), so it imports only what
connecting needs: the notifier (storage, SQLAlchemy) and the cogs come later.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from storyloom.bot.discord.buttons import StoryButton
from storyloom.bot.discord.context import NO_PINGS, quote
from storyloom.ops.trouble import trouble
from storyloom.story.errors import StoryError
from storyloom.story.paging import clip

if TYPE_CHECKING:
    from storyloom.bot.discord.buttons import PressHandler
    from storyloom.bot.discord.posting import DiscordNotifier
    from storyloom.jobs.runtime import JobRuntime
    from storyloom.story.library_ports import Library
    from storyloom.story.service import Deps

log = logging.getLogger(__name__)
MAX_CONTENT = 2000  # Discord's limit on a message's text
FEATURES = (  # the extensions `load_features` loads
    "storyloom.bot.discord.cog",
    "storyloom.bot.discord.sharing",
    "storyloom.bot.discord.server_cog",  # settings, audit
    "storyloom.bot.discord.library_cog",  # /character
)
MISSING_PERMISSION = (
    "I'm not allowed to do that in this channel. Ask a moderator to let me view it, send "
    "messages, create public threads and attach files."
)


class StoryBot(commands.Bot):
    """Holds the service's dependencies; adapters below it hold no business rules."""

    def __init__(self, deps: Deps | None = None, *, lazy: bool = False, **options: Any) -> None:
        """`lazy`: logging in loads no features; the composition root loads them once the
        gateway is connected (`load_features`)."""
        intents = discord.Intents.none()
        intents.guilds = True  # slash commands and threads need no privileged intents
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=NO_PINGS,
            **options,
        )
        self.lazy = lazy
        self._notifier: DiscordNotifier | None = None
        self.jobs: JobRuntime | None = None  # set by the composition root (run.story_bot)
        # what a button press runs: set by the /story cog when it loads (the buttons module
        # cannot import the cog, which imports the bot)
        self.on_press: PressHandler | None = None
        self._deps: Deps | None = None
        self.public_base_url: str | None = None  # where share links point (settings)
        self.library: Library | None = None  # the character library (set by the root)
        if deps is not None:
            self.deps = deps

    @property
    def notifier(self) -> DiscordNotifier:
        """What edits status messages and posts results (built on first use: it brings the
        storage layer, which a lazily started bot imports after it connected)."""
        if self._notifier is None:
            from storyloom.bot.discord.posting import DiscordNotifier

            self._notifier = DiscordNotifier(self)
        return self._notifier

    @property
    def deps(self) -> Deps:
        assert self._deps is not None, "the composition root sets deps before login"
        return self._deps

    @deps.setter
    def deps(self, value: Deps) -> None:
        self._deps = value
        self.notifier.db = value.db  # results are marked posted in the same database

    async def setup_hook(self) -> None:
        """Load the features at login, unless the composition root loads them later."""
        if not self.lazy:
            await self.load_features()

    async def load_features(self) -> None:
        """Load the /story cog, the restart-proof buttons and the global error handler."""
        for feature in FEATURES:
            await self.load_extension(feature)
        self.add_dynamic_items(StoryButton)
        self.tree.error(self.on_app_command_error)

    async def on_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """Slash-command failures: see `report`."""
        await report(interaction, getattr(error, "original", error))


async def report(
    interaction: discord.Interaction[Any], cause: BaseException, what: str | None = None
) -> None:
    """One short sentence for the member; who, where and what for the log (not for domain
    errors: those are the member's to fix, and their sentence says how)."""
    if isinstance(cause, StoryError):
        # domain sentences quote what the member typed (a name, a style): shown literally
        message = quote(cause.message)
    elif isinstance(cause, app_commands.CheckFailure):
        message = "You can't use that here."
    elif isinstance(cause, discord.Forbidden):  # the server's settings: a moderator can fix
        log.warning("forbidden in guild %s channel %s: %s", interaction.guild_id,
                    interaction.channel_id, cause.text)  # fmt: skip
        message = MISSING_PERMISSION
    else:
        if what is None:
            what = interaction.command.qualified_name if interaction.command else "?"
        where = (
            f"member {interaction.user.id}",
            f"guild {interaction.guild_id}",
            f"channel {interaction.channel_id}",
        )
        message = trouble(log, cause, what, *where)
    await reply(interaction, f"✗ {message}")


async def reply(interaction: discord.Interaction[Any], text: str) -> None:
    """Answer the member who asked, privately, whether or not it was deferred (deferrals
    are private too: see cog), never pinging anyone, within Discord's length limit."""
    text = clip(text, MAX_CONTENT)
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)
