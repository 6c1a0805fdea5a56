"""Installs into many workspaces (`--http` with OAuth): slack_sdk's SQLAlchemy stores on our
database, in the tables migration 0005 creates, and a Web API client per workspace.

Bolt runs the install pages (`/slack/install`, `/slack/oauth_redirect`) and, for every
request, finds the sending workspace's bot token in the installation store. The notifier
works outside a request, so it asks `WorkspaceClients` for a client with that token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.sqlalchemy import (
    AsyncSQLAlchemyInstallationStore,
    SQLAlchemyInstallationStore,
)
from slack_sdk.oauth.state_store.sqlalchemy import (
    AsyncSQLAlchemyOAuthStateStore,
    SQLAlchemyOAuthStateStore,
)
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

from storyloom.bot.slack.app import web_client
from storyloom.bot.slack.notifier import NotInstalled

# What the bot does with its token: read mentions, post and edit messages, take /story,
# upload pages and clips, read members' names and roles (users.info, for moderators).
BOT_SCOPES = [
    "app_mentions:read",
    "channels:history",
    "chat:write",
    "commands",
    "files:read",
    "files:write",
    "users:read",
]
# An install started in a browser must come back from Slack within this time.
OAUTH_STATE_SECONDS = 600


@dataclass(frozen=True)
class SlackOAuth:
    """The app's OAuth credentials, for installs into many workspaces (`--http`)."""

    client_id: str
    client_secret: str


def oauth_tables() -> MetaData:
    """slack_sdk's own definitions of its store tables (what migration 0005 must build)."""
    metadata = MetaData()
    SQLAlchemyInstallationStore.build_installations_table(
        metadata, SQLAlchemyInstallationStore.default_installations_table_name
    )
    SQLAlchemyInstallationStore.build_bots_table(
        metadata, SQLAlchemyInstallationStore.default_bots_table_name
    )
    SQLAlchemyOAuthStateStore.build_oauth_states_table(
        metadata, SQLAlchemyOAuthStateStore.default_table_name
    )
    return metadata


def installation_store(oauth: SlackOAuth, engine: AsyncEngine) -> AsyncSQLAlchemyInstallationStore:
    """The installs of this app (its client id) in our database.

    A plain engine: every request reads its workspace's install, and on SQLite a write
    engine (BEGIN IMMEDIATE) would make each of those reads take the write lock. Saves
    happen once per install and are retried by the installer if they lose a race.
    """
    return AsyncSQLAlchemyInstallationStore(oauth.client_id, engine)


def oauth_settings(
    oauth: SlackOAuth, engine: AsyncEngine, installations: AsyncSQLAlchemyInstallationStore
) -> AsyncOAuthSettings:
    """Bolt's OAuth settings: our scopes, our stores, install pages at bolt's default paths."""
    states = AsyncSQLAlchemyOAuthStateStore(OAUTH_STATE_SECONDS, engine)
    return AsyncOAuthSettings(
        client_id=oauth.client_id,
        client_secret=oauth.client_secret,
        scopes=BOT_SCOPES,
        installation_store=installations,
        state_store=states,
    )


@dataclass
class WorkspaceClients:
    """A Web API client per workspace, each with that workspace's bot token."""

    installations: AsyncSQLAlchemyInstallationStore
    # where the Web API is (a test's loopback fake), None for slack.com
    base_url: str | None = None

    async def __call__(self, team_id: str) -> AsyncWebClient:
        """The client for `team_id`'s latest install; `NotInstalled` if there is none."""
        bot = await self.installations.async_find_bot(enterprise_id=None, team_id=team_id)
        if bot is None or bot.bot_token is None:
            raise NotInstalled(f"storyloom is not installed in workspace {team_id}")
        return web_client(bot.bot_token, base_url=self.base_url)


def single_workspace(client: AsyncWebClient) -> Callable[[str], Awaitable[AsyncWebClient]]:
    """Socket Mode, or HTTP without OAuth: one bot token, one client for every job."""

    async def client_for(_team_id: str) -> AsyncWebClient:
        return client

    return client_for
