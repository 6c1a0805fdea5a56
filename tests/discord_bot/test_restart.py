"""What survives a restart of the bot process: the status message is still edited (where
it is, is on the job row), its buttons still work, and a result that finished while no
bot was running is posted into its thread once, with its buttons."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from storyloom.bot.discord.status import StatusRef
from storyloom.config import load_settings
from storyloom.generation.renderer import StoryRenderer
from storyloom.jobs import status_refs
from storyloom.jobs.events import JobEvent
from storyloom.jobs.runtime import job_runtime
from storyloom.storage import SqlDatabase
from storyloom.story import service
from storyloom.story.model import Actor, JobStatus
from storyloom.story.service import utc_now
from tests.job_rows import job_row, until_status
from tests.story.fakes import SentIds

from .fake_discord import GUILD_ID, FakeDiscord, press, slash
from .harness import ANN, BOB, THREAD, Running, ask, buttons, started

GUILD = str(GUILD_ID)

POSTS = f"/channels/{THREAD['id']}/messages"


async def test_a_status_message_is_still_edited_and_its_buttons_work_after_a_restart(
    fake: FakeDiscord,
    db: SqlDatabase,
    slow_renderer: Callable[[], StoryRenderer],
    tmp_path: Path,
) -> None:
    async with started(db, slow_renderer, tmp_path / "out") as first:
        await ask(first, fake, slash("new", THREAD, ANN, title="T"))
        await ask(first, fake, slash("add", THREAD, ANN, text="a beach"))
        await ask(first, fake, slash("render", THREAD, ANN))
        await until_status(db, 1, JobStatus.RUNNING)
    # the process stopped in the middle of the render: the job went back to the line
    assert (await job_row(db, 1)).status == JobStatus.QUEUED
    [status] = fake.job_posts(POSTS)
    cancel_id = buttons(status)[0]
    assert cancel_id == "story:cancel:1"
    message = f"{POSTS}/{status.answer['id']}"
    edits_before = len(fake.where("PATCH", message))

    # a new process: nothing in memory but the database and the buttons' custom ids
    async with started(db, slow_renderer, tmp_path / "out") as second:
        await until_status(db, 1, JobStatus.RUNNING)  # it sent the waiting job again
        # the member presses Cancel once the message says it runs again: pressed earlier, the
        # job may end before this process told "running" (an outcome owed is the last word
        # on a status message, and passing changes are dropped for it), and the edit below
        # would never come (a race a loaded machine lost once)
        await _edited_again(fake, message, edits_before, "🎨 page job #1 running")
        refused = await ask(second, fake, press(cancel_id, THREAD, BOB))  # Bob did not ask
        assert refused.startswith("✗ Only whoever asked for this job")
        assert await ask(second, fake, press(cancel_id, THREAD, ANN)) == "job #1 cancelled"
        await until_status(db, 1, JobStatus.CANCELLED)
        await second.jobs.drain()
        await fake.wait_for_text("PATCH", message, "✖️ page job #1 cancelled")
    texts = [(c.json or {})["content"] for c in fake.where("PATCH", message)[edits_before:]]
    assert "🎨 page job #1 running" in texts  # edited by the second process
    assert texts[-1] == "✖️ page job #1 cancelled"
    assert fake.job_posts(POSTS) == [status]  # no second status message


async def _edited_again(fake: FakeDiscord, message: str, after: int, text: str) -> None:
    """Wait until an edit of `message` beyond the first `after` ones says `text` (first line)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not any(
        ((c.json or {}).get("content") or "").split("\n")[0] == text
        for c in fake.where("PATCH", message)[after:]
    ):
        assert loop.time() < deadline, [c.json for c in fake.where("PATCH", message)]
        await asyncio.sleep(0.02)


async def test_a_result_finished_while_the_bot_was_down_is_posted_once_with_its_buttons(
    fake: FakeDiscord,
    db: SqlDatabase,
    renderer: StoryRenderer,
    slow_renderer: Callable[[], StoryRenderer],
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    async with started(db, slow_renderer, out) as first:
        await ask(first, fake, slash("new", THREAD, ANN, title="Night @everyone"))
        await ask(first, fake, slash("add", THREAD, ANN, text="a beach"))
        await ask(first, fake, slash("render", THREAD, ANN))
        await until_status(db, 1, JobStatus.RUNNING)
    [status] = fake.job_posts(POSTS)

    # a worker finishes the job while no Discord bot runs (it reports nothing itself)
    async def nobody(event: JobEvent) -> None:
        raise AssertionError("a worker that owns no story reports nothing")

    settings = load_settings(output_dir=out, queue="embedded")
    not_ours = lambda workspace_id: False  # noqa: E731
    async with job_runtime(settings, db, nobody, owns=not_ours, load_renderer=lambda: renderer):
        await until_status(db, 1, JobStatus.DONE)
    assert not (await job_row(db, 1)).posted

    async with started(db, lambda: renderer, out) as second:
        [result] = await fake.wait_for_uploads(POSTS)
        await second.jobs.watcher.poll()
        # and its buttons work in this process
        again = await ask(second, fake, press("story:redraw:1", THREAD, ANN))
        assert again == "panel job #2 queued"
        await second.jobs.drain()
        await fake.wait_for_text("PATCH", "/messages/", "✅ panel job #2 done")
    async with started(db, lambda: renderer, out) as third:
        await third.jobs.watcher.poll()
    assert result.files[0][0] == "story-page-01.png"
    assert "@\u200beveryone" in (result.json or {})["content"]
    assert (result.json or {})["allowed_mentions"]["parse"] == []
    assert buttons(result) == ["story:again:j1", "story:clip:j1", "story:redraw:b1"]
    uploads = fake.uploads_to(POSTS)
    page_posts = [c for c in uploads if any(n == "story-page-01.png" for n, _ in c.files)]
    assert page_posts == [result]  # once, though two more processes started
    status_edits = [
        (c.json or {})["content"] for c in fake.where("PATCH", f"{POSTS}/{status.answer['id']}")
    ]
    assert status_edits[-1].splitlines()[0] == "✅ page job #1 done"
    assert result.path == f"{POSTS}/{status.answer['id']}"  # the status message carries it
    assert (await job_row(db, 1)).posted


async def test_a_job_that_ended_before_its_status_message_existed_gets_it_edited(
    running: Running, fake: FakeDiscord, db: SqlDatabase
) -> None:
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    await ask(running, fake, slash("add", THREAD, ANN, text="a beach"))
    offline = dataclasses.replace(running.bot.deps, queue=SentIds())
    actor = Actor(GUILD, THREAD["parent_id"], THREAD["id"], ANN["user"]["id"], "Ann")
    job = await service.render(offline, actor)
    await service.cancel(offline, actor, job.id)
    await running.jobs.watcher.poll()  # reported: no status message to edit yet
    assert (await job_row(db, job.id)).posted
    ref = StatusRef(int(THREAD["id"]), 424242, 10 * 1024 * 1024)
    await status_refs.remember(db, job.id, ref.encode())  # as the slash command does
    await running.jobs.watcher.poll()  # the outbox's next round: the final edit is owed again
    [edit] = fake.where("PATCH", f"{POSTS}/424242")
    assert (edit.json or {})["content"] == f"✖️ page job #{job.id} cancelled"


async def test_a_status_message_claimed_by_a_process_that_died_before_posting_it_is_posted(
    fake: FakeDiscord, db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    async with started(db, lambda: renderer, out) as first:
        await ask(first, fake, slash("new", THREAD, ANN, title="T"))
        await ask(first, fake, slash("add", THREAD, ANN, text="a beach"))
        offline = dataclasses.replace(first.bot.deps, queue=SentIds())
    # a render request that claimed the job's status message a minute ago, and whose
    # process died before posting it (the claim is all it left)
    actor = Actor(GUILD, THREAD["parent_id"], THREAD["id"], ANN["user"]["id"], "Ann")
    job = await service.render(offline, actor)
    async with db.writing() as uow:
        minute_ago = status_refs.claim_text(utc_now() - timedelta(minutes=1))
        assert await uow.jobs.claim_status_ref(job.id, minute_ago)
    assert not await status_refs.claim(db, job.id)  # a second press posts nothing

    async with started(db, lambda: renderer, out) as second:  # sends the waiting job
        [result] = await fake.wait_for_uploads(POSTS)
        await second.jobs.drain()
        await second.jobs.watcher.poll()
    [status] = [c for c in fake.job_posts(POSTS) if c is not result]
    message = f"{POSTS}/{status.answer['id']}"
    texts = [(status.json or {})["content"]]
    texts += [(c.json or {})["content"] for c in fake.where("PATCH", message)]
    # the status message, posted late, still became the result (one message per render)
    assert texts[-1].startswith(f"✅ page job #{job.id} done\n")
    assert StatusRef.parse((await job_row(db, job.id)).status_ref) is not None
