"""`storyloom discord`: the composition root of a Discord bot process.

Its jobs come from `job_runtime`: rendered in this process (`STORYLOOM_QUEUE=embedded`) or
by `storyloom worker` processes through Redis (`redis`; then this process needs no torch,
so nothing here imports the renderer). Either way the job watcher tells the notifier what
happened, also what ended while the bot was down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import discord

from storyloom.bot.background import imported
from storyloom.bot.discord.bot import FEATURES, StoryBot
from storyloom.bot.discord.early import EarlyInteractions
from storyloom.bot.library_setup import character_library
from storyloom.bot.wiring import story_deps
from storyloom.config import Settings
from storyloom.jobs.events import JobEvent, Notify
from storyloom.jobs.runtime import job_runtime
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.story import library

if TYPE_CHECKING:
    from storyloom.generation.renderer import StoryRenderer
    from storyloom.generation.safety import Detector
    from storyloom.ops.server import Ops

log = logging.getLogger(__name__)


def owns_guild(workspace_id: str) -> bool:
    """Stories this bot reports: Discord's (guild ids are digits; Slack's team ids are not)."""
    return workspace_id.isdigit()


@asynccontextmanager
async def story_bot(
    settings: Settings,
    db: SqlDatabase,
    *,
    load_renderer: Callable[[], StoryRenderer] | None = None,
    detector: Callable[[], Detector] | None = None,
    timed: Callable[[Notify], Notify] | None = None,
    watch_every_s: float = 0.5,  # as Slack's: a finished job is told within half a second
    on_ready: Callable[[], None] | None = None,
    bot: StoryBot | None = None,
    leave_load_on_stop: Callable[[], bool] = lambda: False,
) -> AsyncIterator[StoryBot]:
    """The bot (not yet logged in, or `bot`, already connected) with its jobs running; on
    exit the render in hand goes back to the line. `timed` sees the job events (the ops
    metrics time each render); `on_ready` is called once the renderer is loaded (in the
    background)."""
    bot = StoryBot() if bot is None else bot
    async with job_runtime(
        settings,
        db,
        bot.notifier,
        observe=None if timed is None else timed(_nothing),
        owns=owns_guild,
        load_renderer=load_renderer,
        detector=detector,
        watch_every_s=watch_every_s,
        on_ready=on_ready,
        leave_load_on_stop=leave_load_on_stop,
    ) as jobs:
        lib = character_library(settings, db, detector)
        forget = library.forgetting(db, lib, jobs.forget_files())
        bot.deps = story_deps(settings, db, jobs, forget_files=forget)
        bot.library = lib
        bot.notifier.places = jobs.places
        bot.public_base_url = settings.public_base_url
        bot.jobs = jobs
        yield bot


async def _nothing(event: JobEvent) -> None:
    """The metrics only observe the events; the notifier delivers them."""


async def serve_discord(
    settings: Settings,
    bot: StoryBot,
    early: EarlyInteractions,
    connection: asyncio.Task[None],
    ops: Ops,
    sync: bool = False,
    sync_guild: int | None = None,
) -> None:
    """Build the bot that is already connected (start.py): migrate the database, start the
    jobs, load the cogs, hand over the interactions kept meanwhile, and serve until stopped.

    Commands are synced only on request: to one guild (instant, for development) or
    globally (may take up to an hour to appear).
    """
    await upgrade_database(settings.database_url)
    loaded = asyncio.Event()
    async with (
        open_database(settings.database_url) as db,
        story_bot(
            settings,
            db,
            bot=bot,
            timed=ops.metrics.timed,
            on_ready=loaded.set,
            # a stop by signal ends the process: a model load still running is left to it
            leave_load_on_stop=lambda: ops.stopping,
        ),
    ):
        for feature in FEATURES:  # imported on a thread: the gateway goes on answering
            await imported(feature)
        await bot.load_features()
        if sync_guild is not None:
            guild = discord.Object(sync_guild)
            bot.tree.copy_global_to(guild=guild)
            synced = await bot.tree.sync(guild=guild)
            log.info("synced %d commands to guild %s", len(synced), sync_guild)
        elif sync:
            synced = await bot.tree.sync()
            log.info("synced %d commands globally", len(synced))
        await early.hand_over()
        log.info("the bot is built")
        ready = asyncio.create_task(_ready_once(loaded, ops), name="storyloom-ready")
        try:
            await connection  # until the bot closes, or the connection fails for good
        finally:
            ready.cancel()


async def _ready_once(loaded: asyncio.Event, ops: Ops) -> None:
    """Built, and the renderer loaded (or none to load): /healthz says ready."""
    await loaded.wait()
    ops.set_ready()
