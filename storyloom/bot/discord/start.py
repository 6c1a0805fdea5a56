"""`storyloom discord`'s start: the gateway first, then the bot.

Discord gives an interaction 3 s to be acknowledged. So the process logs in and connects
to the gateway with nothing heavier than discord.py imported; interactions arriving
meanwhile are acknowledged at once and kept (`early.EarlyInteractions`). The rest (storage,
the job runtime, the cogs, the renderer) is imported on a thread and built in the
background (`run.serve_discord`), which then hands the kept interactions to their
handlers in order. /healthz says ready once all of it is built and the renderer loaded.
"""

from __future__ import annotations

import asyncio
import logging

import discord
import yarl
from discord.gateway import DiscordWebSocket

from storyloom.bot.background import imported
from storyloom.bot.discord.bot import StoryBot
from storyloom.bot.discord.early import EarlyInteractions
from storyloom.config import Settings

log = logging.getLogger(__name__)


class MissingToken(Exception):
    """The bot cannot start without its token (or with one Discord refuses)."""


REFUSED_TOKEN = (
    "Discord refused STORYLOOM_DISCORD_TOKEN: copy the bot token again from the developer "
    "portal (Bot → Reset Token)"
)


async def use_named_gateway(bot: discord.Client) -> None:
    """Connect to the gateway the REST API names (GET /gateway/bot), not to discord.gg:
    behind a proxy of Discord's API (or a test double) that is the proxy's."""
    _, gateway, _ = await bot.http.get_bot_gateway()
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)


async def start_discord(
    settings: Settings, sync: bool = False, sync_guild: int | None = None
) -> None:
    """Run the Discord bot as `storyloom discord` does, until stopped."""
    if settings.discord_token is None:
        raise MissingToken("set STORYLOOM_DISCORD_TOKEN to the bot token from the developer portal")
    bot = StoryBot(lazy=True)
    early = EarlyInteractions(bot)
    try:
        if settings.discord_api_url is not None:  # a proxy of Discord's API, or a double
            discord.http.Route.BASE = settings.discord_api_url.rstrip("/")
        try:
            await bot.login(settings.discord_token.get_secret_value())
        except discord.LoginFailure:
            raise MissingToken(REFUSED_TOKEN) from None
        if settings.discord_api_url is not None:
            await use_named_gateway(bot)
        connection = asyncio.create_task(bot.connect(), name="storyloom-gateway")
        log.info("connecting to Discord's gateway; the bot is starting")
        process = await imported("storyloom.ops.process")
        run = await imported("storyloom.bot.discord.run")
        await process.run_service(  # ops: /healthz and /metrics, a clean stop on SIGTERM
            settings,
            "discord",
            lambda ops: run.serve_discord(settings, bot, early, connection, ops, sync, sync_guild),
            ready_at_start=False,  # ready once built and its renderer is loaded
        )
    finally:
        await bot.close()
