"""The real bolt AsyncApp served on loopback, a fake Slack Web API, SQLite in tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp

from storyloom.bot.slack import run
from storyloom.bot.slack.adapter import SlackStoryAdapter
from storyloom.bot.slack.app import EVENTS_PATH, build_app, serve_http, web_client
from storyloom.bot.slack.notifier import ClientFor, SlackNotifier
from storyloom.bot.slack.oauth import single_workspace
from storyloom.jobs.admission import positions
from storyloom.jobs.delivery import Delivery
from storyloom.jobs.watcher import JobWatcher
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.story.lookup import ChannelStories
from storyloom.story.ports import JobQueue
from storyloom.story.service import utc_now

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
    stories: ChannelStories
    # the real job watcher over the rows, reporting to the adapter's notifier; tests play
    # the worker by writing rows (worker_rows.py), then `await slack.watcher.poll()`
    watcher: JobWatcher


def _port(runner: web.AppRunner) -> int:
    return int(runner.addresses[0][1])


@asynccontextmanager
async def fake_web_api() -> AsyncIterator[FakeSlack]:
    """The fake Web API, served on a free loopback port."""
    fake = FakeSlack()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.base = f"http://127.0.0.1:{_port(runner)}/"
    try:
        yield fake
    finally:
        await runner.cleanup()


@asynccontextmanager
async def served(app: AsyncApp) -> AsyncIterator[str]:
    """The bolt app on a free loopback port; yields its base URL."""
    runner = await serve_http(app, 0, host="127.0.0.1")
    try:
        yield f"http://127.0.0.1:{_port(runner)}"
    finally:
        await runner.cleanup()


def story_adapter(db: SqlDatabase, queue: JobQueue, client_for: ClientFor) -> SlackStoryAdapter:
    """The adapter as `storyloom slack` builds it: the real fair line and caps
    (jobs.admission) over the jobs the test queues."""
    notifier = SlackNotifier(client_for, db)
    return run.story_adapter(db, queue, notifier, lambda: positions(db, utc_now()), "comic")


@pytest.fixture
async def slack(tmp_path: Path) -> AsyncIterator[Slack]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'stories.db'}"
    await upgrade_database(url)
    async with (
        fake_web_api() as fake,
        open_database(url) as db,
        aiohttp.ClientSession() as http,
    ):
        client = web_client("xoxb-test", base_url=fake.base + "api/")
        queue = RecordingQueue()
        adapter = story_adapter(db, queue, single_workspace(client))
        delivery = Delivery(db, adapter.notifier, tmp_path / "out", run.slack_workspace)
        watcher = JobWatcher(db, delivery, lambda: positions(db, utc_now()), run.slack_workspace)
        app = build_app(adapter, client=client, signing_secret=SECRET)
        try:
            async with served(app) as base:
                sender = Sender(http, base + EVENTS_PATH, fake.base + "respond/story")
                yield Slack(fake, sender, db, queue, adapter, adapter.stories, watcher)
        finally:
            await delivery.close()
    # nothing the bot sent was over Slack's limits (a refused message shows nothing)
    assert not fake.refused, fake.refused
