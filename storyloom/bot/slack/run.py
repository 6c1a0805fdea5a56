"""`storyloom slack`: the composition root of a Slack bot process.

Socket Mode (one workspace, app + bot tokens, no public URL) by default; `--http` serves
Slack's Events API on a port, verified with the signing secret, and with OAuth
credentials installs into many workspaces (tokens kept in our database). Jobs render in
this process (`queue = "embedded"`) or on `storyloom worker` machines (`queue = "redis"`,
and then this process imports no torch); either way their events come from the job rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from storyloom.bot.library_setup import character_library
from storyloom.bot.slack.adapter import SlackStoryAdapter
from storyloom.bot.slack.app import EVENTS_PATH, build_app, serve_http, web_client
from storyloom.bot.slack.commands import SUBCOMMANDS
from storyloom.bot.slack.members import Members
from storyloom.bot.slack.notifier import ClientFor, SlackNotifier
from storyloom.bot.slack.oauth import (
    SlackOAuth,
    WorkspaceClients,
    installation_store,
    oauth_settings,
    single_workspace,
)
from storyloom.bot.slack.share_commands import share_subcommands
from storyloom.bot.slack.start import MissingSlackSetting
from storyloom.bot.slack.start import secret as required
from storyloom.bot.wiring import story_deps
from storyloom.config import Settings
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import JobAdmission
from storyloom.jobs.events import JobEvent
from storyloom.jobs.runtime import job_runtime
from storyloom.jobs.watcher import Places
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.storage.lookup_repo import SqlChannelStories
from storyloom.story import library as story_library
from storyloom.story.library_ports import Library
from storyloom.story.model import DeletedStory
from storyloom.story.ports import JobQueue
from storyloom.story.render_limits import RenderLimits
from storyloom.story.server import ServerSettings
from storyloom.story.service import Deps

log = logging.getLogger(__name__)
if TYPE_CHECKING:
    from storyloom.bot.slack.front import EarlyFront
    from storyloom.ops.server import Ops

__all__ = ["MissingSlackSetting", "SlackOAuth", "run_slack"]


def slack_workspace(workspace_id: str) -> bool:
    """Whether a story's jobs are this bot's to report: Slack team ids are letters and
    digits (`T024BE7LD`); Discord guild ids, in a shared database, are all digits."""
    return not workspace_id.isdigit()


def story_adapter(
    db: SqlDatabase,
    queue: JobQueue,
    notifier: SlackNotifier,
    places: Places,
    style: str,
    admission: JobAdmission | None = None,
    limits: RenderLimits | None = None,
    public_base_url: str | None = None,
    defaults: ServerSettings | None = None,
    forget_files: Callable[[DeletedStory], Awaitable[None]] | None = None,
    library: Library | None = None,
) -> SlackStoryAdapter:
    """The adapter over a story service wired from parts (tests, tools), with the caps on
    waiting jobs (`admission`, by default the default caps) and on one job (`limits`);
    `storyloom slack` wires it from the settings (bot/wiring.py) and calls adapter_over."""
    deps = Deps(
        db,
        queue,
        STYLE_NAMES,
        style,
        admit_job=admission or JobAdmission(),
        render_limits=limits or RenderLimits(),
        server_defaults=defaults or ServerSettings(default_style=style),
        forget_files=forget_files,
    )
    return adapter_over(deps, db, notifier, places, public_base_url, library)


def adapter_over(
    deps: Deps,
    db: SqlDatabase,
    notifier: SlackNotifier,
    places: Places,
    public_base_url: str | None = None,
    library: Library | None = None,
) -> SlackStoryAdapter:
    """The Slack adapter over a wired story service, each new job's place in the fair
    line (`places`) shown on its status message, and the workspace's `library`."""

    async def queue_place(job_id: int) -> int | None:
        return (await places()).get(job_id)

    offered = {**SUBCOMMANDS, **share_subcommands(public_base_url)}
    return SlackStoryAdapter(
        deps, SqlChannelStories(db), notifier, Members(), queue_place, offered, library
    )


async def _nothing(event: JobEvent) -> None:
    """The metrics only observe the events; the notifier delivers them."""


async def run_slack(
    settings: Settings,
    http: bool,
    port: int,
    oauth: SlackOAuth | None = None,
    ops: Ops | None = None,
    front: EarlyFront | None = None,
) -> None:
    """Migrate the database, start the jobs side, and serve Slack until stopped (with
    `ops`, each render's seconds are counted for /metrics). HTTP mode with a `front`
    already serving the port (`storyloom slack --http`): the app is handed to it."""
    # every missing setting is named before anything starts
    token = None if oauth else required(settings.slack_bot_token, "slack_bot_token")
    if http:
        secret, app_token = required(settings.slack_signing_secret, "slack_signing_secret"), ""
    else:
        # Socket Mode requests come over the app-token websocket and are not signed;
        # bolt still wants a secret at construction, which it never uses for them
        secret, app_token = (
            "socket-mode-unused",
            required(settings.slack_app_token, "slack_app_token"),
        )
    await upgrade_database(settings.database_url)
    async with open_database(settings.database_url) as db:
        client = web_client(token, base_url=settings.slack_api_url)
        installs = None
        client_for: ClientFor = single_workspace(client)
        if oauth is not None:
            installations = installation_store(oauth, db.engine)
            installs = oauth_settings(oauth, db.engine, installations)
            client_for = WorkspaceClients(installations, base_url=settings.slack_api_url)
        notifier = SlackNotifier(client_for, db)
        # the watcher starts by reporting what ended while the bot was down; the outbox
        # delivers what is still owed from before
        observe = None if ops is None else ops.metrics.timed(_nothing)
        on_ready = None if ops is None else ops.set_ready
        async with job_runtime(
            settings,
            db,
            notifier,
            observe=observe,
            owns=slack_workspace,
            on_ready=on_ready,
            # a stop by signal ends the process: a model load still running is left to it
            leave_load_on_stop=lambda: ops is not None and ops.stopping,
        ) as jobs:
            lib = character_library(settings, db)
            forget = story_library.forgetting(db, lib, jobs.forget_files())
            deps = story_deps(settings, db, jobs, forget_files=forget)
            adapter = adapter_over(
                deps, db, notifier, jobs.places, settings.public_base_url, library=lib
            )
            app = build_app(adapter, client=client, signing_secret=secret, oauth_settings=installs)
            if http and front is not None:
                front.hand_over(app)
                log.info("serving Slack events on port %d at %s", port, EVENTS_PATH)
                await asyncio.Event().wait()  # until the process is stopped
            elif http:
                runner = await serve_http(app, port)
                log.info("serving Slack events on port %d at %s", port, EVENTS_PATH)
                try:
                    await asyncio.Event().wait()  # until the process is stopped
                finally:
                    await runner.cleanup()
            else:
                # imported here: HTTP mode starts (and acks) sooner without it
                from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

                handler = AsyncSocketModeHandler(app, app_token)
                try:
                    await handler.start_async()
                finally:  # its websocket's session, else left open at exit (and logged so)
                    await handler.close_async()
