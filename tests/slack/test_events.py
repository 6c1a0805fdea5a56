"""Mentions, buttons, the add-a-beat modal, job status updates and request verification."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from storyloom.jobs.local import JobEvent
from storyloom.story.model import JobStatus

from .conftest import Slack


async def _new(slack: Slack, title: str = "Harbour", team: str = "T1") -> str:
    before = len(slack.fake.named("chat.update"))
    assert await slack.send.command(f"new {title}", team=team) == 200
    return str((await slack.fake.wait_for("chat.update", before + 1))[-1].params["ts"])


async def _thread_replies(slack: Slack, count: int) -> list[str]:
    calls = await slack.fake.wait_for("chat.postMessage", count)
    return [str(c.params["text"]) for c in calls]


async def test_mentions_in_the_thread_add_beats_and_render(slack: Slack) -> None:
    ts = await _new(slack)  # one chat.postMessage: the anchor
    assert await slack.send.mention("add the boats come home", ts) == 200
    assert "beat 1" in (await _thread_replies(slack, 2))[-1]
    assert await slack.send.mention("render", ts) == 200
    status, answer = (await _thread_replies(slack, 4))[-2:]
    assert "page job" in status and "queued" in status and "next in the queue" in status
    assert "queued" in answer
    assert all(c.params.get("thread_ts") == ts for c in slack.fake.named("chat.postMessage")[1:])
    assert len(slack.queue.submitted) == 1
    assert slack.fake.named("users.info")  # the display name comes from the member's profile


async def test_a_mention_outside_a_thread_points_to_the_thread(slack: Slack) -> None:
    await _new(slack)
    assert await slack.send.mention("add lost beat", None) == 200
    assert "inside a story's thread" in (await _thread_replies(slack, 2))[-1]


async def test_the_anchor_button_opens_a_modal_that_adds_a_beat(slack: Slack) -> None:
    slack.fake.names["U1"] = "Ada"
    ts = await _new(slack)
    assert await slack.send.button("add", f"{ts}|") == 200
    view = (await slack.fake.wait_for("views.open"))[0].params["view"]
    assert "story_add_beat" in str(view) and ts in str(view)
    assert await slack.send.submit_beat("C1", ts, "the fog lifts") == 200
    assert "beat 1 by Ada: the fog lifts" in (await _thread_replies(slack, 2))[-1]


async def test_job_buttons_render_again_clip_and_cancel(slack: Slack) -> None:
    ts = await _new(slack)
    assert await slack.send.command("add a beat") == 200
    await slack.fake.wait_for("chat.postEphemeral", 2)
    assert await slack.send.button("again", f"{ts}|1-1") == 200
    assert await slack.send.button("clip", f"{ts}|") == 200
    await slack.fake.wait_for("chat.postEphemeral", 4)
    job_id = slack.queue.submitted[0]
    assert await slack.send.button("cancel", f"{ts}|{job_id}") == 200
    answers = await slack.fake.wait_for("chat.postEphemeral", 5)
    assert f"job #{job_id} cancelled" in answers[-1].params["text"]
    assert len(slack.queue.submitted) == 2


async def test_look_buttons_lock_and_try_another_look(slack: Slack) -> None:
    ts = await _new(slack)
    assert await slack.send.command("cast Mira a keeper in a yellow coat") == 200
    await slack.fake.wait_for("chat.postEphemeral", 2)
    assert await slack.send.button("reroll", f"{ts}|Mira") == 200
    answers = await slack.fake.wait_for("chat.postEphemeral", 3)
    assert "character sheet for Mira" in answers[-1].params["text"]
    assert await slack.send.button("lock", f"{ts}|Mira") == 200
    await slack.fake.wait_for("chat.postEphemeral", 4)
    assert len(slack.queue.submitted) >= 1


async def test_the_status_message_is_updated_and_the_page_uploaded(
    slack: Slack, tmp_path: Path
) -> None:
    ts = await _new(slack)
    await slack.send.command("cast Mira a keeper")
    await slack.fake.wait_for("chat.postEphemeral", 2)
    await slack.send.command("add [Mira] waves <!channel>")
    await slack.fake.wait_for("chat.postEphemeral", 3)
    await slack.send.command("render")
    await slack.fake.wait_for("chat.postEphemeral", 4)
    status_ts = slack.fake.named("chat.postMessage")[-1].answer["ts"]
    async with slack.db.reading() as uow:
        job = await uow.jobs.find(slack.queue.submitted[0])
    assert job is not None
    page = tmp_path / "page.png"
    page.write_bytes(b"\x89PNG fake page")
    updates = len(slack.fake.named("chat.update"))
    await slack.adapter.notifier(JobEvent(job, JobStatus.RUNNING))
    async with slack.db.writing() as uow:  # what the worker records before it notifies
        await uow.jobs.set_status(job.id, JobStatus.DONE, datetime.now(UTC))
    await slack.adapter.notifier(JobEvent(job, JobStatus.DONE, (page,)))
    edits = slack.fake.named("chat.update")[updates:]
    assert [e.params["ts"] for e in edits] == [status_ts, status_ts]
    assert "running" in edits[0].params["text"] and "done" in edits[1].params["text"]
    complete = slack.fake.named("files.completeUploadExternal")[-1].params
    assert complete["channel_id"] == "C1" and complete["thread_ts"] == ts
    assert b"\x89PNG fake page" in slack.fake.uploads
    # a second DONE (a redelivery) posts nothing more
    await slack.adapter.notifier(JobEvent(job, JobStatus.DONE, (page,)))
    assert len(slack.fake.named("files.completeUploadExternal")) == 1


async def test_a_mention_injection_beat_is_neutralised(slack: Slack) -> None:
    ts = await _new(slack)
    await slack.send.command("add <!channel> <!here> &lt;!everyone&gt; <@U2> wake up")
    await slack.fake.wait_for("chat.postEphemeral", 2)
    await slack.send.mention("add <!here|here> again @channel", ts)
    await slack.fake.wait_for("chat.postMessage", 2)
    await slack.send.command("list")
    listing = (await slack.fake.wait_for("chat.postEphemeral", 3))[-1].params["text"]
    assert "wake up" in listing and "again" in listing
    for text in slack.fake.texts():
        for ping in ("<!channel>", "<!here", "<!everyone>", "<@U2>", " @channel", " @here"):
            assert ping not in text, text


async def test_a_bad_signature_or_a_stale_timestamp_is_refused_and_stores_nothing(
    slack: Slack,
) -> None:
    assert await slack.send.command("new Forged", secret="not-the-secret") == 401
    stale = int(time.time()) - 10 * 60
    assert await slack.send.command("new Replayed", timestamp=stale) == 401
    assert await slack.stories.latest_open("T1", "C1") is None
    assert [c for c in slack.fake.calls if c.method != "auth.test"] == []


async def test_two_workspaces_never_see_each_others_stories(slack: Slack) -> None:
    await _new(slack, "Ours", team="T1")
    await slack.send.command("add a secret beat", team="T1")
    await slack.fake.wait_for("chat.postEphemeral", 2)
    assert await slack.send.command("list", team="T2") == 200
    assert "/story new" in (await slack.fake.wait_for("chat.postEphemeral", 3))[-1].params["text"]
    ours = await slack.stories.latest_open("T1", "C1")
    assert ours is not None
    async with slack.db.reading() as uow:
        story = await uow.stories.get(ours)
    assert story is not None
    assert await slack.send.command(f"#{story.id} list", team="T2") == 200
    answer = (await slack.fake.wait_for("chat.postEphemeral", 4))[-1].params["text"]
    assert f"no story #{story.id}" in answer
    assert all("secret" not in text for text in slack.fake.texts()[-2:])
