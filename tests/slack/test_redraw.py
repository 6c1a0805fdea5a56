"""Drawing one panel again (`redraw N`): by command, mention, a page's buttons or its menu."""

from __future__ import annotations

from pathlib import Path

from storyloom.story.model import JobKind

from . import worker_rows as worker
from .conftest import Slack
from .helpers import command, job, new_story, outcome_actions, pressed, said, story_of


async def _variants(slack: Slack) -> list[int]:
    story = await story_of(slack)
    async with slack.db.reading() as uow:
        return [beat.variant for beat in await uow.beats.page(story.id, 0, 100)]


async def _story_with(slack: Slack, beats: int) -> str:
    ts = await new_story(slack)
    for n in range(1, beats + 1):
        await command(slack, f"add beat {n}")
    return ts


async def test_redraw_by_command_and_mention_draws_one_panel_again(slack: Slack) -> None:
    ts = await _story_with(slack, 3)
    assert await command(slack, "redraw 2") == "panel 2 redraw job #1 queued"
    assert "panel 3 redraw job #2 queued" in await said(slack, "redraw 3", ts, replies=2)
    first, second = [await job(slack, i) for i in slack.queue.submitted]
    assert (first.kind, first.first_position, first.last_position) == (JobKind.PANEL, 2, 2)
    assert (second.kind, second.first_position, second.last_position) == (JobKind.PANEL, 3, 3)
    assert await _variants(slack) == [0, 1, 1]  # the new seed stays with the beat
    status = [
        c.params for c in slack.fake.named("chat.postMessage") if "redraw job" in c.params["text"]
    ]
    assert [s["thread_ts"] for s in status] == [ts, ts, ts]  # two status messages, one answer
    assert status[0]["text"] == "⏳ panel 2 redraw job #1 queued · next in the queue"


async def test_a_redraw_needs_a_beat_number_its_author_and_room_in_the_queue(
    slack: Slack,
) -> None:
    slack.fake.admins.add("UADMIN")
    await _story_with(slack, 2)
    assert (await command(slack, "redraw")).replace("\u200b", "") == (
        "✗ Give the beat whose panel to draw again, e.g. `redraw 3`."
    )
    assert (await command(slack, "redraw 9")).startswith("✗")
    assert (await command(slack, "redraw 1", user="UGUEST")).startswith("✗")
    assert not slack.queue.submitted and await _variants(slack) == [0, 0]
    assert "queued" in await command(slack, "redraw 1", user="UADMIN")  # a moderator may
    for _ in range(3):
        await command(slack, "redraw 2")
    assert (await command(slack, "redraw 2")).startswith("✗ You already have 3 jobs waiting")
    assert await _variants(slack) == [1, 3]


async def test_a_page_offers_a_redraw_button_per_panel(slack: Slack, tmp_path: Path) -> None:
    ts = await _story_with(slack, 3)
    await command(slack, "render")
    (page,) = slack.queue.submitted
    await worker.finish(slack.db, tmp_path / "out", page, {"page-1.png": b"\x89PNG"})
    await slack.watcher.poll()
    buttons = outcome_actions(slack, "story_redraw")
    assert [b["text"]["text"] for b in buttons] == [f"Redraw panel {n}" for n in (1, 2, 3)]
    two = buttons[1]
    answer = await pressed(slack, two["action_id"].removeprefix("story_"), two["value"])
    assert answer == "panel 2 redraw job #2 queued"
    redraw = await job(slack, slack.queue.submitted[-1])
    assert (redraw.kind, redraw.first_position) == (JobKind.PANEL, 2)
    # the redrawn panel goes up into the thread, with what comes next
    await worker.finish(slack.db, tmp_path / "out", redraw.id, {"panel-2.png": b"\x89PNG 2"})
    await slack.watcher.poll()
    complete = slack.fake.named("files.completeUploadExternal")[-1].params
    assert complete["thread_ts"] == ts
    assert complete["initial_comment"] == "*Harbour* — panel 2 redraw for U1 · job #2"
    status = slack.fake.named("chat.update")[-1].params  # its own status message, over
    assert status["text"] == "✅ panel 2 redraw job #2 done"
    assert "Redraw panel 2 again" in str(status["blocks"]) and "story_clip" not in str(status)
    again, render = outcome_actions(slack, "story_redraw")
    assert (
        again["text"]["text"] == "Redraw panel 2 again" and again["value"] == f"{ts}|b2"
    )  # beat ids
    assert render["action_id"] == "story_again"
    assert "page job #3 queued" in await pressed(slack, "again", render["value"])
    assert (await job(slack, 3)).last_position == 3  # the whole page, with the new panel


async def test_a_long_page_offers_its_panels_in_a_menu(slack: Slack, tmp_path: Path) -> None:
    ts = await _story_with(slack, 26)  # more than one row of buttons can hold
    await command(slack, "render")
    (page,) = slack.queue.submitted
    await worker.finish(slack.db, tmp_path / "out", page, {"page-1.png": b"\x89PNG"})
    await slack.watcher.poll()
    (menu,) = outcome_actions(slack, "story_redraw")
    assert menu["type"] == "static_select" and len(menu["options"]) == 26
    picked = menu["options"][25]["value"]
    assert picked == f"{ts}|b26"  # the beat, by id
    answers = len(slack.fake.named("chat.postEphemeral"))
    assert await slack.send.select("redraw", picked) == 200
    answer = (await slack.fake.wait_for("chat.postEphemeral", answers + 1))[-1].params["text"]
    assert answer == "panel 26 redraw job #2 queued"


async def test_a_panel_button_redraws_its_beat_after_a_move_and_says_when_it_is_gone(
    slack: Slack, tmp_path: Path
) -> None:
    await _story_with(slack, 3)
    await command(slack, "render")
    (page,) = slack.queue.submitted
    await worker.finish(slack.db, tmp_path / "out", page, {"page-1.png": b"\x89PNG"})
    await slack.watcher.poll()
    buttons = outcome_actions(slack, "story_redraw")
    first = buttons[0]  # "Redraw panel 1": beat 1 as the page drew it
    await command(slack, "move 1 3")  # now at place 3
    answer = await pressed(slack, "redraw", first["value"])
    assert answer == "panel 3 redraw job #2 queued"
    redraw = await job(slack, slack.queue.submitted[-1])
    assert [(b.id, b.position) for b in redraw.beats] == [(1, 3)]
    await command(slack, "remove 3")
    gone = await pressed(slack, "redraw", first["value"])
    assert gone == "✗ That beat was removed; it has no panel to draw again."
    assert len(slack.queue.submitted) == 2  # nothing else was queued
