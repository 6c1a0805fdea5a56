"""A status message claimed by a request whose process died before posting it: the outbox
takes the claim over once its lease is out and posts the message itself, ending in the
job's outcome, so the job still has one (and only one) status message. The real watcher,
delivery and notifier against the loopback fake of Slack's Web API."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
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
from storyloom.storage import open_database, upgrade_database
from storyloom.story import service
from storyloom.story.model import Actor
from storyloom.story.service import Deps, utc_now
from tests.job_rows import job_row, owed_state

from . import worker_rows as worker
from .conftest import RecordingQueue, fake_web_api


async def test_a_claimed_status_message_never_posted_is_posted_with_the_outcome(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'claims.db'}"
    await upgrade_database(url)
    async with fake_web_api() as fake, open_database(url) as db:
        fake.teams = {"xoxb-a": "TA"}
        client = web_client("xoxb-a", base_url=fake.base + "api/")

        async def client_for(team: str) -> AsyncWebClient:
            return client

        deps = Deps(db, RecordingQueue(), STYLE_NAMES, "comic")
        anchor = str((await client.chat_postMessage(channel="C1", text="📖"))["ts"])
        actor = Actor("TA", "C1", anchor, "U1", "Ann")
        await service.new_story(deps, actor, "Harbour")
        await service.add_beat(deps, actor, "a beat")
        job = await service.render(deps, actor)
        # the request claimed the status message a minute ago; its process died there
        async with db.writing() as uow:
            minute_ago = status_refs.claim_text(utc_now() - timedelta(minutes=1))
            assert await uow.jobs.claim_status_ref(job.id, minute_ago)
        await worker.start(db, job.id)
        out = tmp_path / "out"
        await worker.finish(db, out, job.id, {"page-1.png": b"\x89PNG"})

        delivery = Delivery(db, SlackNotifier(client_for, db), out, every_s=0.05)
        watcher = JobWatcher(db, delivery, lambda: positions(db, utc_now()), every_s=0.05)
        tasks = [asyncio.create_task(watcher.run()), asyncio.create_task(delivery.run())]
        try:

            async def delivered() -> None:
                while await owed_state(db, job.id) != "delivered":
                    await asyncio.sleep(0.02)

            await asyncio.wait_for(delivered(), 30)
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await delivery.close()
        ref = StatusRef.decode((await job_row(db, job.id)).status_ref)
    assert ref is not None and ref.thread_ts == anchor
    replies = [m for ts, m in fake.messages["C1"].items() if ts != anchor]
    status = [m for m in replies if not m.get("files") and "page job" in m["text"]]
    assert [m["text"] for m in status] == [f"✅ page job #{job.id} done"]
    assert fake.messages["C1"][ref.message_ts] is status[0]
    assert len([m for m in replies if m.get("files")]) == 1  # and the result, once
