"""`storyloom slack`: the composition root of a Slack bot process (embedded worker).

Socket Mode (one workspace, app + bot tokens, no public URL) by default; `--http` serves
Slack's Events API on a port, verified with the signing secret, and with OAuth
credentials installs into many workspaces (tokens kept in our database).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from pydantic import SecretStr
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from storyloom.bot.slack.adapter import SlackStoryAdapter
from storyloom.bot.slack.app import EVENTS_PATH, build_app, serve_http, web_client
from storyloom.bot.slack.notifier import SlackNotifier
from storyloom.config import Settings
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import positions
from storyloom.jobs.local import LocalWorker
from storyloom.storage import create_engine, open_database, upgrade_database
from storyloom.storage.lookup_repo import SqlChannelStories
from storyloom.story.service import Deps, utc_now

log = logging.getLogger(__name__)
BOT_SCOPES = [
    "app_mentions:read",
    "channels:history",
    "chat:write",
    "commands",
    "files:write",
    "users:read",
]
OAUTH_STATE_SECONDS = 600


class MissingSlackSetting(Exception):
    """A token or secret the chosen mode needs is not set."""


@dataclass(frozen=True)
class SlackOAuth:
    """The app's OAuth credentials, for installs into many workspaces (`--http`)."""

    client_id: str
    client_secret: str


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

        async def client_for(team_id: str) -> AsyncWebClient:
            if oauth is None:
                return client
            bot = await installations.async_find_bot(enterprise_id=None, team_id=team_id)
            if bot is None:
                raise MissingSlackSetting(f"storyloom is not installed in workspace {team_id}")
            return web_client(bot.bot_token)

        notifier = SlackNotifier(client_for, db)
        worker = LocalWorker(
            db,
            lambda: StoryRenderer.from_settings(settings),
            settings.output_dir,
            notifier,
            clip_budget_bytes=int(settings.clip_budget_mib * 1024 * 1024),
        )
        deps = Deps(db, worker, STYLE_NAMES, settings.style)

        async def queue_place(job_id: int) -> int | None:
            return (await positions(db, utc_now())).get(job_id)

        adapter = SlackStoryAdapter(deps, SqlChannelStories(db), notifier, queue_place)
        engine = create_engine(settings.database_url)
        installations = AsyncSQLAlchemyInstallationStore(oauth.client_id if oauth else "", engine)
        oauth_settings = None
        if oauth is not None:
            oauth_settings = AsyncOAuthSettings(
                client_id=oauth.client_id,
                client_secret=oauth.client_secret,
                scopes=BOT_SCOPES,
                installation_store=installations,
                state_store=AsyncSQLAlchemyOAuthStateStore(OAUTH_STATE_SECONDS, engine),
            )
        working = asyncio.create_task(worker.run())
        try:
            if http:
                secret = _secret(settings.slack_signing_secret, "slack_signing_secret")
                app = build_app(
                    adapter, client=client, signing_secret=secret, oauth_settings=oauth_settings
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
            await engine.dispose()
