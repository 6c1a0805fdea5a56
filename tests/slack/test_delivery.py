"""The outbox on Slack, through the real watcher, delivery and notifier against the fake Web
API (which keeps messages, answers 429 as Slack does, and lists a thread's replies): one
status message per job, one beat per event, outcomes delivered exactly once across a crash,
retried until they get through, set aside once when they never can."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import update

from storyloom.jobs import delivery as delivery_module
from storyloom.storage.owed import owed_counts
from storyloom.storage.tables import OwedMessageRow
from storyloom.storage.unit_of_work import session_of
from tests.job_rows import owed_state

from . import worker_rows as worker
from .conftest import Slack
from .helpers import command, new_story

OUT = "out"


def _status_messages(slack: Slack, job_id: int) -> list[str]:
    return [
        str(c.answer["ts"])
        for c in slack.fake.named("chat.postMessage")
        if f" job #{job_id} queued" in str(c.params.get("text"))
    ]


def _uploads(slack: Slack, job_id: int) -> int:
    """The job's results in the channel, as Slack keeps them."""
    return sum(
        bool(m.get("files")) and f"job #{job_id}" in m["text"]
        for m in slack.fake.messages.get("C1", {}).values()
    )


async def _done_job(slack: Slack, tmp_path: Path) -> int:
    """A page job with its status message, finished by the worker (not yet reported)."""
    await new_story(slack)
    await command(slack, "add a beat")
    await command(slack, "render")
    (job_id,) = slack.queue.submitted
    await worker.start(slack.db, job_id)
    await worker.finish(slack.db, tmp_path / OUT, job_id, {"page-1.png": b"\x89PNG"})
    return job_id


async def test_a_double_click_posts_one_status_message(slack: Slack) -> None:
    ts = await new_story(slack)
    await command(slack, "add a beat")
    on = "1700000000.999999"  # one member, one message, two clicks at once
    presses = [slack.send.button("again", f"{ts}|1-1", message_ts=on) for _ in range(2)]
    assert await asyncio.gather(*presses) == [200, 200]
    answers = await slack.fake.wait_for("chat.postEphemeral", 4)  # /story ×2, two presses
    assert [a.params["text"] for a in answers[-2:]] == ["page job #1 queued"] * 2
    assert slack.queue.submitted == [1]
    assert len(_status_messages(slack, 1)) == 1


async def test_a_redelivered_mention_adds_its_beat_once(slack: Slack) -> None:
    ts = await new_story(slack)
    for _ in range(2):  # Slack retries the event (same event_id) when the ack seemed lost
        assert await slack.send.mention("add the fog lifts", ts, event_id="Ev0SAME") == 200
    await slack.fake.wait_for("chat.postMessage", 3)  # the anchor, then two answers
    assert await command(slack, "list") == "`  1` the fog lifts — U1\npage 1/1 · 1 beats"


async def test_an_upload_that_reached_slack_before_a_crash_is_not_posted_again(
    slack: Slack, tmp_path: Path
) -> None:
    job_id = await _done_job(slack, tmp_path)
    await slack.watcher.poll()
    assert _uploads(slack, job_id) == 1 and await owed_state(slack.db, job_id) == "delivered"
    # as if the process died after Slack took the upload, before it was recorded as made
    async with slack.db.writing() as uow:
        await session_of(uow).execute(
            update(OwedMessageRow)
            .where(OwedMessageRow.job_id == job_id)
            .values(state="pending", done="status", started="result,status")
        )
    await slack.watcher.poll()  # the next start delivers what is owed: it looks first
    assert _uploads(slack, job_id) == 1
    assert slack.fake.named("conversations.replies")  # it did look
    assert await owed_state(slack.db, job_id) == "delivered"


async def test_an_upload_begun_but_lost_in_a_crash_is_made_once_after_it(
    slack: Slack, tmp_path: Path
) -> None:
    job_id = await _done_job(slack, tmp_path)
    slack.fake.errors["files.completeUploadExternal"] = "internal_error"
    await slack.watcher.poll()  # begun, never taken: it stays owed
    assert _uploads(slack, job_id) == 0 and await owed_state(slack.db, job_id) == "pending"
    del slack.fake.errors["files.completeUploadExternal"]
    async with slack.db.writing() as uow:  # its retry is due now rather than in a second
        await session_of(uow).execute(
            update(OwedMessageRow)
            .where(OwedMessageRow.job_id == job_id)
            .values(next_try_at=OwedMessageRow.created_at)
        )
    await slack.watcher.poll()
    assert _uploads(slack, job_id) == 1
    assert await owed_state(slack.db, job_id) == "delivered"


async def test_a_failing_outcome_is_retried_until_it_gets_through_and_shown_meanwhile(
    slack: Slack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(delivery_module, "BACKOFF_S", (0.05, 0.05))
    job_id = await _done_job(slack, tmp_path)
    status_ts = _status_messages(slack, job_id)[0]
    slack.fake.errors["chat.update"] = "internal_error"  # Slack has a bad day
    for _ in range(4):
        await slack.watcher.poll()
        await asyncio.sleep(0.06)
    async with slack.db.engine.connect() as connection:
        counts = await owed_counts(connection)
    assert counts["failing"] == 1 and counts["pending"] == 1  # in /metrics
    assert any(r.levelno == logging.ERROR and "failed" in r.message for r in caplog.records)
    del slack.fake.errors["chat.update"]
    await asyncio.sleep(0.06)
    await slack.watcher.poll()
    assert await owed_state(slack.db, job_id) == "delivered"
    kept = slack.fake.messages["C1"][status_ts]["text"]
    assert kept == f"✅ page job #{job_id} done"  # the last word is the outcome
    assert _uploads(slack, job_id) == 1


async def test_an_outcome_for_a_channel_the_bot_lost_is_set_aside_and_logged_once(
    slack: Slack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = await _done_job(slack, tmp_path)
    slack.fake.errors["chat.update"] = "channel_not_found"
    for _ in range(3):
        await slack.watcher.poll()
    assert await owed_state(slack.db, job_id) == "impossible"
    lost = [r for r in caplog.records if "cannot be delivered" in r.message]
    assert len(lost) == 1 and "channel_not_found" in lost[0].message
    assert len(slack.fake.named("chat.update")) == 2  # the anchor, the one try
