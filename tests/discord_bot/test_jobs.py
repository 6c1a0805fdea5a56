"""Render jobs on Discord through the real discord.py code: status messages, uploads within
the limit, credits, buttons, and what survives a restart."""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import replace
from pathlib import Path

from storyloom.generation.renderer import StoryRenderer
from storyloom.jobs.local import JobEvent, LocalWorker
from storyloom.storage import SqlDatabase

from .fake_discord import FakeDiscord, press, slash
from .harness import ANN, BOB, MOD, THREAD, Running, followups, start_bot


async def test_render_edits_one_status_message_and_uploads_the_page(
    running: Running, fake: FakeDiscord
) -> None:
    task = asyncio.create_task(running.worker.run())
    try:
        running.send(slash("new", THREAD, ANN, title="Lighthouse"))
        await followups(fake, 1)
        running.send(slash("cast", THREAD, ANN, name="Mira", description="a girl"))
        await followups(fake, 2)
        running.send(slash("add", THREAD, ANN, text='[Mira] waves # Mira: "Hi!"'))
        await followups(fake, 3)
        running.send(slash("add", THREAD, MOD, text="[Mira] sleeps"))
        await followups(fake, 4)
        running.send(slash("render", THREAD, BOB))
        answers = await followups(fake, 5)
        assert "page job #1 queued" in answers[4]
        await asyncio.wait_for(running.worker.drain(), 120)
        await fake.wait_for("POST", f"/channels/{THREAD['id']}/messages", 2)
    finally:
        task.cancel()
    status, result = fake.where("POST", f"/channels/{THREAD['id']}/messages")
    assert "queued" in (status.json or {})["content"]
    edits = [(c.json or {})["content"] for c in fake.where("PATCH", "/messages/")]
    assert any("running" in e for e in edits) and "done" in edits[-1]
    names = [name for name, _ in result.files]
    assert names[0] == "story-page-01.png" and "story.pdf" in names
    assert "for Bob" in (result.json or {})["content"]
    assert "beats by Ann, Mo" in (result.json or {})["content"]  # the credits
    assert (result.json or {})["allowed_mentions"]["parse"] == []


async def test_a_button_pressed_after_a_restart_still_works(
    fake: FakeDiscord, db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    first = await start_bot(db, renderer, tmp_path / "out")
    first.send(slash("new", THREAD, ANN, title="T"))
    await followups(fake, 1)
    first.send(slash("add", THREAD, ANN, text="a beach"))
    await followups(fake, 2)
    first.send(slash("render", THREAD, ANN))
    await followups(fake, 3)
    [status] = fake.where("POST", f"/channels/{THREAD['id']}/messages")
    components = (status.json or {})["components"][0]["components"]
    cancel_id = components[0]["custom_id"]
    assert cancel_id == "story:cancel:1"
    await first.bot.close()

    # a new process: nothing in memory but the database and the custom_id
    second = await start_bot(db, renderer, tmp_path / "out")
    try:
        second.send(press(cancel_id, THREAD, BOB))  # Bob did not ask for it
        refused = await followups(fake, 4)
        assert refused[3].startswith("✗ Only whoever asked")
        second.send(press(cancel_id, THREAD, ANN))
        done = await followups(fake, 5)
        assert done[4] == "job #1 cancelled"
    finally:
        await second.bot.close()


async def test_a_result_finished_while_the_bot_was_down_is_posted_once_after_restart(
    fake: FakeDiscord, db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    from storyloom.bot.discord.posting import post_pending

    first = await start_bot(db, renderer, tmp_path / "out")
    first.send(slash("new", THREAD, ANN, title="Night @everyone"))
    await followups(fake, 1)
    first.send(slash("add", THREAD, ANN, text="a beach"))
    await followups(fake, 2)
    first.send(slash("render", THREAD, ANN))
    await followups(fake, 3)
    await first.bot.close()

    # the worker finishes while no bot process is there to post
    async def nobody_listens(event: JobEvent) -> None:
        return None

    offline = LocalWorker(db, lambda: renderer, tmp_path / "out", nobody_listens)
    await offline.process(1)

    second = await start_bot(db, renderer, tmp_path / "out")
    try:
        assert await post_pending(second.bot.notifier, db, tmp_path / "out") == 1
        assert await post_pending(second.bot.notifier, db, tmp_path / "out") == 0
    finally:
        await second.bot.close()
    uploads = [c for c in fake.where("POST", f"/channels/{THREAD['id']}/messages") if c.files]
    [post] = uploads
    assert "story-page-01.png" in [name for name, _ in post.files]
    assert "@\u200beveryone" in (post.json or {})["content"]
    assert (post.json or {})["allowed_mentions"]["parse"] == []


async def test_a_character_sheet_gets_lock_and_try_another_buttons_for_allowed_members(
    running: Running, fake: FakeDiscord
) -> None:
    task = asyncio.create_task(running.worker.run())
    try:
        running.send(slash("new", THREAD, ANN, title="T"))
        await followups(fake, 1)
        running.send(slash("cast", THREAD, ANN, name="Mira", description="a girl"))
        await followups(fake, 2)
        running.send(slash("look", THREAD, ANN, name="Mira"))
        answers = await followups(fake, 3)
        assert "sheet job #1 queued" in answers[2]
        await asyncio.wait_for(running.worker.drain(), 120)
        posts = await fake.wait_for("POST", f"/channels/{THREAD['id']}/messages", 2)
    finally:
        task.cancel()
    status, sheet = posts[:2]
    [cancel] = (status.json or {})["components"][0]["components"]
    assert cancel["custom_id"] == "story:cancel:1"  # a sheet can be cancelled while it renders
    assert sheet.files
    ids = [b["custom_id"] for b in (sheet.json or {})["components"][0]["components"]]
    assert ids == ["story:lock:Mira", "story:reroll:Mira"]

    running.send(press("story:lock:Mira", THREAD, ANN))
    answers = await followups(fake, 4)
    assert answers[3] == "Mira's look is locked"
    running.send(press("story:reroll:Mira", THREAD, BOB))  # Bob did not cast Mira
    answers = await followups(fake, 5)
    assert answers[4].startswith("✗") and "locked" in answers[4]


async def test_the_status_message_shows_the_place_in_line_and_moves_up(
    running: Running, fake: FakeDiscord
) -> None:
    running.send(slash("new", THREAD, ANN, title="T"))
    await followups(fake, 1)
    running.send(slash("add", THREAD, ANN, text="a beach"))
    await followups(fake, 2)
    running.send(slash("render", THREAD, ANN))
    await followups(fake, 3)
    running.send(slash("render", THREAD, BOB))
    await followups(fake, 4)
    first, second = fake.where("POST", f"/channels/{THREAD['id']}/messages")
    assert (first.json or {})["content"].endswith("queued — next in line")
    assert (second.json or {})["content"].endswith("queued — 2 in line, 1 ahead")

    await running.worker.process(1)
    edits = [(c.path, (c.json or {})["content"]) for c in fake.where("PATCH", "/messages/")]
    moved_up = [text for path, text in edits if "job #2" in text]
    assert moved_up == ["⏳ page job #2 queued — next in line"]
    assert any("job #1 done" in text for _, text in edits)


async def test_progress_shows_panel_percent_and_time_left_at_most_every_few_seconds(
    running: Running, fake: FakeDiscord, renderer: StoryRenderer
) -> None:
    # one panel at a time: three panels of two steps make six step reports
    one_by_one = replace(renderer.settings, max_batch=1)
    running.worker.load_renderer = lambda: StoryRenderer(renderer.loaded, one_by_one, None)
    heard: list[JobEvent] = []
    notifier = running.bot.notifier

    async def recording(event: JobEvent) -> None:
        heard.append(event)
        await notifier(event)

    running.worker.notify = recording
    running.worker.progress_every_s = 0  # the worker reports every step
    ticks = itertools.count()
    notifier.clock = lambda: float(next(ticks))  # each report comes one second after the last
    running.send(slash("new", THREAD, ANN, title="T"))
    await followups(fake, 1)
    for count, text in enumerate(("a beach", "a boat", "a storm"), start=2):
        running.send(slash("add", THREAD, ANN, text=text))
        await followups(fake, count)
    running.send(slash("render", THREAD, ANN))
    await followups(fake, 5)
    await running.worker.process(1)

    reports = [e.progress for e in heard if e.progress is not None]
    assert len(reports) >= 4
    edits = [(c.json or {})["content"] for c in fake.where("PATCH", "/messages/")]
    shown = [e for e in edits if "%" in e]
    assert len(shown) == len(range(0, len(reports), 3))  # at t = 0, 3, 6, … s
    assert re.fullmatch(r"🎨 page job #1 running — [▰▱]{10} panel [1-3] of 3, \d+%", shown[0])
    assert any(re.search(r"panel [1-3] of 3, \d+%, about \d+ s left$", e) for e in shown[1:])
    assert edits[0] == "🎨 page job #1 running" and edits[-1] == "✅ page job #1 done"
