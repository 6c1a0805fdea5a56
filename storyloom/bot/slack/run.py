"""`storyloom slack`: the composition root of a Slack bot process (embedded worker).

Socket Mode (one workspace, app + bot tokens, no public URL) by default; `--http` serves
Slack's Events API on a port, verified with the signing secret, and with OAuth
credentials installs into many workspaces (tokens kept in our database).
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import SecretStr
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from storyloom.bot.slack.adapter import SlackStoryAdapter
from storyloom.bot.slack.app import EVENTS_PATH, build_app, serve_http, web_client
from storyloom.bot.slack.members import Members
from storyloom.bot.slack.notifier import ClientFor, SlackNotifier
from storyloom.bot.slack.oauth import (
    SlackOAuth,
    WorkspaceClients,
    installation_store,
    oauth_settings,
    single_workspace,
)
from storyloom.config import Settings
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import JobAdmission, head_of_line, positions
from storyloom.jobs.local import LocalWorker
from storyloom.storage import open_database, upgrade_database
from storyloom.storage.lookup_repo import SqlChannelStories
from storyloom.story.service import Deps, utc_now

log = logging.getLogger(__name__)
__all__ = ["MissingSlackSetting", "SlackOAuth", "run_slack"]


class MissingSlackSetting(Exception):
    """A token or secret the chosen mode needs is not set."""


def _secret(value: SecretStr | None, name: str) -> str:
    if value is None:
        raise MissingSlackSetting(f"set STORYLOOM_{name.upper()} (see docs/slack.md)")
    return value.get_secret_value()


async def run_slack(
    settings: Settings, http: bool, port: int, oauth: SlackOAuth | None = None
) -> None:
    """Migrate the database, start the in-process worker, and serve Slack until stopped."""
    from storyloom.generation.renderer import StoryRenderer

    await upgrade_database(settings.database_url)
    async with open_database(settings.database_url) as db:
        token = None if oauth else _secret(settings.slack_bot_token, "slack_bot_token")
        client = web_client(token)
        installs = None
        client_for: ClientFor = single_workspace(client)
        if oauth is not None:
            installations = installation_store(oauth, db.engine)
            installs = oauth_settings(oauth, db.engine, installations)
            client_for = WorkspaceClients(installations)
        notifier = SlackNotifier(client_for, db, places=lambda: positions(db, utc_now()))
        worker = LocalWorker(
            db,
            lambda: StoryRenderer.from_settings(settings),
            settings.output_dir,
            notifier,
            clip_budget_bytes=int(settings.clip_budget_mib * 1024 * 1024),
            pick_next=head_of_line,  # the fair line: each workspace gets its turn
        )
        deps = Deps(db, worker, STYLE_NAMES, settings.style, admit_job=JobAdmission())

        async def queue_place(job_id: int) -> int | None:
            return (await positions(db, utc_now())).get(job_id)

        adapter = SlackStoryAdapter(deps, SqlChannelStories(db), notifier, Members(), queue_place)
        working = asyncio.create_task(worker.run())
        try:
            if http:
                secret = _secret(settings.slack_signing_secret, "slack_signing_secret")
                app = build_app(
                    adapter, client=client, signing_secret=secret, oauth_settings=installs
                )
                runner = await serve_http(app, port)
                log.info("serving Slack events on port %d at %s", port, EVENTS_PATH)
                try:
                    await asyncio.Event().wait()  # until the process is stopped
                finally:
                    await runner.cleanup()
            else:
                # Socket Mode requests come over the app-token websocket and are not signed;
                # bolt still wants a secret at construction, which it never uses for them
                app = build_app(adapter, client=client, signing_secret="socket-mode-unused")
                handler = AsyncSocketModeHandler(
                    app, _secret(settings.slack_app_token, "slack_app_token")
                )
                await handler.start_async()
        finally:
            working.cancel()
