"""The real bolt AsyncApp served on loopback, a fake Slack Web API, SQLite in tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from storyloom.bot.slack.adapter import SlackStoryAdapter
from storyloom.bot.slack.app import EVENTS_PATH, build_app, serve_http, web_client
from storyloom.bot.slack.notifier import SlackNotifier
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import positions
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.storage.lookup_repo import SqlChannelStories
from storyloom.story.service import Deps, utc_now

from .fake_slack import SECRET, FakeSlack, Sender


@dataclass
class RecordingQueue:
    """The job queue: remembers what was submitted (no worker in these tests)."""

    submitted: list[int] = field(default_factory=list)

    async def submit(self, job_id: int) -> None:
        self.submitted.append(job_id)


@dataclass
class Slack:
    fake: FakeSlack
    send: Sender
    db: SqlDatabase
    queue: RecordingQueue
    adapter: SlackStoryAdapter
    stories: SqlChannelStories


def _port(runner: web.AppRunner) -> int:
    return int(runner.addresses[0][1])


@pytest.fixture
async def slack(tmp_path: Path) -> AsyncIterator[Slack]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'stories.db'}"
    await upgrade_database(url)
    fake = FakeSlack()
    fake_runner = web.AppRunner(fake.app())
    await fake_runner.setup()
    await web.TCPSite(fake_runner, "127.0.0.1", 0).start()
    fake.base = f"http://127.0.0.1:{_port(fake_runner)}/"
    async with open_database(url) as db, aiohttp.ClientSession() as http:
        client = web_client("xoxb-test", base_url=fake.base + "api/")
        queue = RecordingQueue()
        notifier = SlackNotifier(lambda _team: _same(client), db)
        stories = SqlChannelStories(db)
        deps = Deps(db, queue, STYLE_NAMES, "comic")

        async def queue_place(job_id: int) -> int | None:
            # the real fair line (jobs.admission), over the jobs this test queued
            return (await positions(db, utc_now())).get(job_id)

        adapter = SlackStoryAdapter(deps, stories, notifier, queue_place)
        app = build_app(adapter, client=client, signing_secret=SECRET)
        runner = await serve_http(app, 0, host="127.0.0.1")
        sender = Sender(http, f"http://127.0.0.1:{_port(runner)}{EVENTS_PATH}")
        try:
            yield Slack(fake, sender, db, queue, adapter, stories)
        finally:
            await runner.cleanup()
            await fake_runner.cleanup()


async def _same(client: AsyncWebClient) -> AsyncWebClient:
    return client
