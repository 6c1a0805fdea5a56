"""`storyloom discord`: the composition root of a Discord bot process (embedded worker)."""

from __future__ import annotations

import asyncio
import logging

import discord

from storyloom.bot.discord.bot import StoryBot
from storyloom.bot.discord.posting import post_pending
from storyloom.config import Settings
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import JobAdmission, head_of_line, positions
from storyloom.jobs.local import LocalWorker
from storyloom.jobs.recovery import requeue_stale
from storyloom.storage import open_database, upgrade_database
from storyloom.story.service import Deps, utc_now

log = logging.getLogger(__name__)


class MissingToken(Exception):
    """The bot cannot start without its token."""


async def run_discord(
    settings: Settings, sync: bool = False, sync_guild: int | None = None
) -> None:
    """Migrate the database, start the in-process worker, log in, and serve until stopped.

    Commands are synced only on request: to one guild (instant, for development) or
    globally (may take up to an hour to appear).
    """
    if settings.discord_token is None:
        raise MissingToken("set STORYLOOM_DISCORD_TOKEN to the bot token from the developer portal")
    from storyloom.generation.renderer import StoryRenderer

    await upgrade_database(settings.database_url)
    async with open_database(settings.database_url) as db:
        bot = StoryBot()
        worker = LocalWorker(
            db,
            lambda: StoryRenderer.from_settings(settings),
            settings.output_dir,
            bot.notifier,
            clip_budget_bytes=int(settings.clip_budget_mib * 1024 * 1024),
            pick_next=head_of_line,  # the fair line: each server gets its turn
        )
        bot.deps = Deps(db, worker, STYLE_NAMES, settings.style, admit_job=JobAdmission())
        bot.notifier.places = lambda: positions(db, utc_now())
        working = asyncio.create_task(worker.run())
        try:
            async with bot:
                await bot.login(settings.discord_token.get_secret_value())
                if sync_guild is not None:
                    guild = discord.Object(sync_guild)
                    bot.tree.copy_global_to(guild=guild)
                    synced = await bot.tree.sync(guild=guild)
                    log.info("synced %d commands to guild %s", len(synced), sync_guild)
                elif sync:
                    synced = await bot.tree.sync()
                    log.info("synced %d commands globally", len(synced))
                # what a previous process left: results never posted, jobs never rendered
                posted = await post_pending(bot.notifier, db, settings.output_dir)
                requeued = await requeue_stale(db, worker)
                log.info("posted %d pending results, re-queued %d jobs", posted, len(requeued))
                await bot.connect()
        finally:
            working.cancel()
