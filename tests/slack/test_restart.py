"""After a restart: results that finished while the bot was down are posted once into their
story threads, and jobs queued before it still get their status messages edited.

Each "process" is the bot as `storyloom slack` assembles it (run.story_adapter over
jobs.runtime.job_runtime, the real watcher, the Slack notifier), on one database file and
one fake Slack; the job's status message is found again through its row's status_ref."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from storyloom.bot.slack import run
from storyloom.bot.slack.adapter import SlackStoryAdapter
from storyloom.bot.slack.app import EVENTS_PATH, build_app, web_client
from storyloom.bot.slack.notifier import SlackNotifier
from storyloom.bot.slack.oauth import single_workspace
from storyloom.config import load_settings
from storyloom.generation.models import LoadedModel, load_pipeline
from storyloom.generation.renderer import RenderSettings, StoryRenderer
from storyloom.jobs.runtime import JobRuntime, job_runtime
from storyloom.storage import SqlDatabase, open_database, upgrade_database

from . import worker_rows as worker
from .conftest import RecordingQueue, fake_web_api, served
from .fake_slack import SECRET, FakeSlack, Sender
from .helpers import command, new_story
from .test_status import _edits, _status_message

Loader = Callable[[], StoryRenderer]


@dataclass
class Process:
    send: Sender
    jobs: JobRuntime | None


@dataclass
class World:
    """What outlives a bot process: the database, Slack, the output folder."""

    db: SqlDatabase
    fake: FakeSlack
    http: aiohttp.ClientSession
    out: Path

    @asynccontextmanager
    async def bot(self, load_renderer: Loader | None = None) -> AsyncIterator[Process]:
        """One bot process; without a renderer, one that dies before rendering anything
        (its jobs stay queued)."""
        client = web_client("xoxb-test", base_url=self.fake.base + "api/")
        notifier = SlackNotifier(single_workspace(client), self.db)
        settings = load_settings(output_dir=self.out, queue="embedded")
        if load_renderer is None:
            queue = RecordingQueue()
            adapter = run.story_adapter(self.db, queue, notifier, _no_places, "comic")
            async with self._serving(adapter) as send:
                yield Process(send, None)
            return
        async with job_runtime(
            settings,
            self.db,
            notifier,
            owns=run.slack_workspace,
            load_renderer=load_renderer,
            watch_every_s=0.05,
        ) as jobs:
            adapter = run.story_adapter(self.db, jobs.queue, notifier, jobs.places, "comic")
            async with self._serving(adapter) as send:
                yield Process(send, jobs)

    @asynccontextmanager
    async def _serving(self, adapter: SlackStoryAdapter) -> AsyncIterator[Sender]:
        client = web_client("xoxb-test", base_url=self.fake.base + "api/")
        app = build_app(adapter, client=client, signing_secret=SECRET)
        async with served(app) as base:
            yield Sender(self.http, base + EVENTS_PATH, self.fake.base + "respond/story")


async def _no_places() -> dict[int, int]:
    return {}


def _never() -> StoryRenderer:
    raise AssertionError("nothing should render in this test")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'stories.db'}"
    await upgrade_database(url)
    async with fake_web_api() as fake, open_database(url) as db, aiohttp.ClientSession() as http:
        yield World(db, fake, http, tmp_path / "out")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))


@dataclass
class _Chat:
    """The channel as one process's members see it (helpers.Chat)."""

    fake: FakeSlack
    send: Sender


async def test_a_result_that_finished_while_the_bot_was_down_is_posted_once(
    world: World, tmp_path: Path
) -> None:
    async with world.bot() as before:
        slack = _Chat(world.fake, before.send)
        ts = await new_story(slack)
        await command(slack, "add the lamp is lit")
        await command(slack, "render")
    status_ts = _status_message(slack, 1)
    # while no bot runs, a worker on another machine renders it; its files are in the database
    await worker.start(world.db, 1)
    await worker.finish_elsewhere(world.db, 1, {"page-1.png": b"\x89PNG far"}, tmp_path / "gpu")
    async with world.bot(_never):  # its watcher reports what ended, first thing
        await world.fake.wait_for("files.completeUploadExternal")
    assert _edits(slack, status_ts) == ["✅ page job #1 done"]
    (complete,) = world.fake.named("files.completeUploadExternal")
    assert complete.params["thread_ts"] == ts and complete.params["channel_id"] == "C1"
    assert world.fake.uploads == [b"\x89PNG far"]
    assert (world.out / "job-1" / "page-1.png").read_bytes() == b"\x89PNG far"
    async with world.bot(_never) as again:  # a second restart posts nothing more
        assert again.jobs is not None
        await again.jobs.watcher.poll()
    assert len(world.fake.named("files.completeUploadExternal")) == 1


async def test_a_job_queued_before_a_restart_still_has_its_message_edited(
    world: World, loaded: LoadedModel, tmp_path: Path
) -> None:
    async with world.bot() as before:
        slack = _Chat(world.fake, before.send)
        ts = await new_story(slack)
        await command(slack, "add the lamp is lit")
        assert "page job #1 queued" in await command(slack, "render")
    status_ts = _status_message(slack, 1)
    small = RenderSettings(width=64, height=64, steps=2)
    renderer = lambda: StoryRenderer(loaded, small, tmp_path / "stores")  # noqa: E731
    async with world.bot(renderer):  # it sends the waiting job again at start
        await world.fake.wait_for("files.completeUploadExternal", timeout=120)
    edits = _edits(slack, status_ts)
    assert edits[-1] == "✅ page job #1 done"
    assert any(e.startswith("🎨 page job #1 running") for e in edits)
    (complete,) = world.fake.named("files.completeUploadExternal")
    assert complete.params["thread_ts"] == ts
    titles = [f["title"] for f in json.loads(complete.params["files"])]
    assert titles == ["story-page-01.png", "story.pdf", "story.zip"]  # the page first
    assert world.fake.uploads[0].startswith(b"\x89PNG")
