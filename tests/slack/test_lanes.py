"""Lanes: a workspace that Slack throttles (429 on every call, Retry-After) holds up no other
workspace's outcome, and its own outcome still arrives, last, once the limit lifts. Two
workspaces with their own bot tokens, the real watcher, delivery and notifier."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from storyloom.bot.slack.app import web_client
from storyloom.bot.slack.notifier import SlackNotifier
from storyloom.bot.slack.refs import StatusRef
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs import status_refs
from storyloom.jobs.admission import positions
from storyloom.jobs.delivery import Delivery
from storyloom.jobs.watcher import JobWatcher
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.story import service
from storyloom.story.model import Actor
from storyloom.story.service import Deps, utc_now
from tests.job_rows import owed_state

from . import worker_rows as worker
from .conftest import RecordingQueue, fake_web_api
from .fake_slack import FakeSlack


async def _finished_job(
    db: SqlDatabase, client: AsyncWebClient, team: str, out: Path
) -> tuple[int, str]:
    """A story in `team`'s channel C1, a page job with its status message, done by the
    worker; the job's id and its status message's ts."""
    deps = Deps(db, RecordingQueue(), STYLE_NAMES, "comic")
    anchor = str((await client.chat_postMessage(channel="C1", text="📖"))["ts"])
    actor = Actor(team, "C1", anchor, "U1", "Ann")
    await service.new_story(deps, actor, "Harbour")
    await service.add_beat(deps, actor, "a beat")
    job = await service.render(deps, actor)
    text = f"⏳ page job #{job.id} queued"
    posted = await client.chat_postMessage(channel="C1", thread_ts=anchor, text=text)
    await status_refs.remember(db, job.id, StatusRef(team, "C1", anchor, posted["ts"]).encode())
    await worker.start(db, job.id)
    await worker.finish(db, out, job.id, {"page-1.png": b"\x89PNG"})
    return job.id, str(posted["ts"])


def _text(fake: FakeSlack, ts: str) -> str:
    return str(fake.messages["C1"][ts]["text"])


async def test_a_throttled_workspace_holds_up_no_other(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lanes.db'}"
    await upgrade_database(url)
    async with fake_web_api() as fake, open_database(url) as db:
        fake.teams = {"xoxb-a": "TA", "xoxb-b": "TB"}
        clients = {
            team: web_client(token, base_url=fake.base + "api/")
            for token, team in fake.teams.items()
        }

        async def client_for(team: str) -> AsyncWebClient:
            return clients[team]

        out = tmp_path / "out"
        a, a_ts = await _finished_job(db, clients["TA"], "TA", out)
        b, b_ts = await _finished_job(db, clients["TB"], "TB", out)
        fake.throttled, fake.throttle_every, fake.throttle_after_s = {"xoxb-a"}, 1, 1

        delivery = Delivery(db, SlackNotifier(client_for, db), out, every_s=0.05)
        watcher = JobWatcher(db, delivery, lambda: positions(db, utc_now()), every_s=0.05)
        tasks = [asyncio.create_task(watcher.run()), asyncio.create_task(delivery.run())]
        try:

            async def delivered(job_id: int) -> None:
                while await owed_state(db, job_id) != "delivered":
                    await asyncio.sleep(0.02)

            await asyncio.wait_for(delivered(b), 30)
            # B is through while A still waits out its rate limit
            assert await owed_state(db, a) == "pending"
            assert _text(fake, b_ts) == f"✅ page job #{b} done"
            assert _text(fake, a_ts) == f"⏳ page job #{a} queued"
            assert any(c.method.endswith("(429)") for c in fake.calls)
            fake.throttled.clear()  # the limit lifts: A's outcome goes out, as its last word
            await asyncio.wait_for(delivered(a), 60)
            assert _text(fake, a_ts) == f"✅ page job #{a} done"
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await delivery.close()
        results = [m for m in fake.messages["C1"].values() if m.get("files")]
        assert sorted(m["text"].rsplit("#", 1)[1] for m in results) == sorted([str(a), str(b)])
