"""Installs into many workspaces: bolt's OAuth pages over loopback, the install stored in
our database (migration 0005's tables), and the stored bot token used for that workspace."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest

from storyloom.bot.slack.adapter import SlackStoryAdapter
from storyloom.bot.slack.app import EVENTS_PATH, build_app, web_client
from storyloom.bot.slack.notifier import NotInstalled
from storyloom.bot.slack.oauth import (
    BOT_SCOPES,
    SlackOAuth,
    WorkspaceClients,
    installation_store,
    oauth_settings,
)
from storyloom.storage import open_database, upgrade_database

from .conftest import RecordingQueue, fake_web_api, served, story_adapter
from .fake_slack import SECRET, FakeSlack, Sender

OAUTH = SlackOAuth("1111.2222", "client-secret-never-logged")
STATE_COOKIE = "slack-app-oauth-state"
NINE = {
    "app_id": "A1",
    "access_token": "xoxb-nine",
    "token_type": "bot",
    "scope": ",".join(BOT_SCOPES),
    "bot_user_id": "UBOT9",
    "team": {"id": "T9", "name": "Team Nine"},
    "enterprise": None,
    "is_enterprise_install": False,
    "authed_user": {"id": "U9"},
}


@dataclass
class Installing:
    fake: FakeSlack
    http: aiohttp.ClientSession
    base: str
    send: Sender
    clients: WorkspaceClients
    adapter: SlackStoryAdapter


@pytest.fixture
async def installing(tmp_path: Path) -> AsyncIterator[Installing]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'stories.db'}"
    await upgrade_database(url)  # the store tables come from our migrations, nothing else
    async with fake_web_api() as fake, open_database(url) as db, aiohttp.ClientSession() as http:
        fake.installs["c0de-nine"] = NINE
        fake.teams["xoxb-nine"] = "T9"
        api = fake.base + "api/"
        installations = installation_store(OAUTH, db.engine)
        clients = WorkspaceClients(installations, base_url=api)
        adapter = story_adapter(db, RecordingQueue(), clients)
        app = build_app(
            adapter,
            client=web_client(None, base_url=api),  # no token: each workspace has its own
            signing_secret=SECRET,
            oauth_settings=oauth_settings(OAUTH, db.engine, installations),
        )
        async with served(app) as base:
            sender = Sender(http, base + EVENTS_PATH, fake.base + "respond/story")
            yield Installing(fake, http, base, sender, clients, adapter)


async def _start_install(it: Installing) -> str:
    """Open the install page as a browser would; return the OAuth state it issued."""
    async with it.http.get(it.base + "/slack/install") as page:
        assert page.status == 200
        html = await page.text()
        cookie = page.headers["Set-Cookie"]
    authorize = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', html)
    assert authorize is not None, html
    query = parse_qs(urlparse(authorize.group(1).replace("&amp;", "&")).query)
    assert query["client_id"] == [OAUTH.client_id]
    assert set(query["scope"][0].split(",")) == set(BOT_SCOPES)
    state = query["state"][0]
    assert f"{STATE_COOKIE}={state}" in cookie
    return state


async def _come_back(it: Installing, code: str, state: str) -> int:
    """Slack sends the browser back to the redirect URL with a code and the state."""
    async with it.http.get(
        it.base + "/slack/oauth_redirect",
        params={"code": code, "state": state},
        headers={"Cookie": f"{STATE_COOKIE}={state}"},
    ) as back:
        return back.status


async def test_an_install_is_stored_and_that_workspace_is_served_with_its_own_token(
    installing: Installing,
) -> None:
    it = installing
    state = await _start_install(it)
    assert await _come_back(it, "c0de-nine", state) == 200
    (exchange,) = it.fake.named("oauth.v2.access")
    assert exchange.params["code"] == "c0de-nine"
    basic = base64.b64decode(exchange.token.removeprefix("Basic ")).decode()
    assert basic == f"{OAUTH.client_id}:{OAUTH.client_secret}"  # sent as Basic auth
    stored = await it.clients.installations.async_find_bot(enterprise_id=None, team_id="T9")
    assert stored is not None and stored.bot_token == "xoxb-nine"

    # a later request from that workspace: its listeners call Slack with its token
    assert await it.send.command("new The Ninth Wave", team="T9") == 200
    anchor = (await it.fake.wait_for("chat.postMessage"))[0]
    assert anchor.token == "xoxb-nine"
    await it.fake.wait_for("chat.postEphemeral")
    assert {c.token for c in it.fake.calls if c.method.startswith("chat.")} == {"xoxb-nine"}
    assert await it.adapter.stories.latest_open("T9", "C1") is not None
    # the job notifier, outside any request, finds the same token
    assert (await it.clients("T9")).token == "xoxb-nine"


async def test_a_workspace_without_an_install_is_not_served(installing: Installing) -> None:
    it = installing
    assert await it.send.command("new Nobody Installed Me", team="T8") == 200
    # bolt answers through the command's response_url, and runs none of our listeners
    assert "reinstall this app" in it.fake.responses[0]["text"]
    assert await it.adapter.stories.latest_open("T8", "C1") is None
    assert not [c for c in it.fake.calls if c.method.startswith("chat.")]
    with pytest.raises(NotInstalled, match="T8"):
        await it.clients("T8")


async def test_an_install_needs_the_state_it_was_given_once(installing: Installing) -> None:
    it = installing
    state = await _start_install(it)
    assert await _come_back(it, "c0de-nine", "forged-state") != 200
    assert await _come_back(it, "no-such-code", state) != 200  # Slack refuses the code
    assert await it.clients.installations.async_find_bot(enterprise_id=None, team_id="T9") is None
    # the state was used up by the failed exchange: a replay is refused without asking Slack
    exchanges = len(it.fake.named("oauth.v2.access"))
    assert await _come_back(it, "c0de-nine", state) != 200
    assert len(it.fake.named("oauth.v2.access")) == exchanges
