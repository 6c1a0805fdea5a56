"""Buttons on the anchor, status, result and sheet messages, and the add-a-beat modal."""

from __future__ import annotations

from datetime import UTC, datetime

from storyloom.story.model import JobKind, LockState

from .conftest import Slack
from .helpers import command, job, new_story, pressed, story_of


async def test_the_anchor_button_opens_a_modal_that_adds_a_beat(slack: Slack) -> None:
    slack.fake.names["U1"] = "Ada"
    ts = await new_story(slack)
    assert await slack.send.button("add", f"{ts}|") == 200
    (opened,) = await slack.fake.wait_for("views.open")
    assert opened.params["trigger_id"] == slack.send.last_trigger_id  # the press's own
    view = opened.params["view"]
    assert view["callback_id"] == "story_add_beat" and view["private_metadata"] == f"C1|{ts}"
    assert await slack.send.submit_beat("C1", ts, "the fog <!here> lifts @channel") == 200
    (posted,) = (await slack.fake.wait_for("chat.postMessage", 2))[1:]
    assert posted.params["thread_ts"] == ts
    # a form's text comes raw (no mention markup): escaped on the way out, it pings no one
    assert posted.params["text"] == "beat 1 by Ada: the fog &lt;!here&gt; lifts @\u200bchannel"


async def test_a_bad_beat_from_the_modal_is_answered_and_not_stored(slack: Slack) -> None:
    ts = await new_story(slack)
    assert await slack.send.submit_beat("C1", ts, "[Nobody] waves") == 200
    answer = (await slack.fake.wait_for("chat.postEphemeral", 2))[-1].params
    assert answer["text"].startswith("✗") and "Nobody" in answer["text"]
    assert answer["thread_ts"] == ts
    assert await command(slack, "list") == "page 1/1 · 0 beats"


async def test_render_again_and_clip_buttons_queue_the_span_they_carry(slack: Slack) -> None:
    ts = await new_story(slack)
    for n in range(3):
        await command(slack, f"add beat {n}")
    assert "page job #1 queued" in await pressed(slack, "again", f"{ts}|2-3")
    assert "clip job #2 queued" in await pressed(slack, "clip", f"{ts}|-")  # all beats
    page, clip = [await job(slack, i) for i in slack.queue.submitted]
    assert (page.kind, page.first_position, page.last_position) == (JobKind.PAGE, 2, 3)
    assert (clip.kind, clip.first_position, clip.last_position) == (JobKind.CLIP, 1, 3)
    # each got its status message in the thread, from the button's story
    status = [c.params for c in slack.fake.named("chat.postMessage")[1:] if "blocks" in c.params]
    assert [s["thread_ts"] for s in status] == [ts, ts]
    assert "Render" in str(slack.fake.named("chat.update")[0].params["blocks"])  # on the anchor


async def test_the_cancel_button_cancels_its_job(slack: Slack) -> None:
    ts = await new_story(slack)
    await command(slack, "add a beat")
    await command(slack, "render")
    (job_id,) = slack.queue.submitted
    assert f"job #{job_id} cancelled" in await pressed(slack, "cancel", f"{ts}|{job_id}")
    assert (await job(slack, job_id)).status.value == "cancelled"
    assert "already cancelled" in await pressed(slack, "cancel", f"{ts}|{job_id}")


async def test_sheet_buttons_try_another_look_and_lock_it(slack: Slack) -> None:
    ts = await new_story(slack)
    await command(slack, "cast Mira a keeper in a yellow coat")
    story = await story_of(slack)
    async with slack.db.reading() as uow:
        (mira,) = await uow.characters.list(story.id)
    answer = await pressed(slack, "reroll", f"{ts}|Mira")
    assert "character sheet for Mira queued" in answer
    (sheet,) = [await job(slack, i) for i in slack.queue.submitted]
    assert sheet.kind == JobKind.REROLL and sheet.character_id == mira.id
    async with slack.db.writing() as uow:  # what the worker records once the sheet is drawn
        await uow.characters.update(mira.id, datetime.now(UTC), lock_state=LockState.SHEET_RENDERED)
    assert "Mira's look is locked" in await pressed(slack, "lock", f"{ts}|Mira")
    async with slack.db.reading() as uow:
        (mira,) = await uow.characters.list(story.id)
    assert mira.lock_state == LockState.LOCKED
    assert "already locked" in await pressed(slack, "lock", f"{ts}|Mira")


async def test_a_button_for_a_story_of_another_workspace_finds_nothing(slack: Slack) -> None:
    ts = await new_story(slack, team="T1")
    await command(slack, "add a beat", team="T1")
    answer = await pressed(slack, "again", f"{ts}|1-1", team="T2")
    assert answer.startswith("✗") and not slack.queue.submitted


async def test_an_unknown_button_is_answered(slack: Slack) -> None:
    ts = await new_story(slack)
    assert "older storyloom" in await pressed(slack, "frobnicate", f"{ts}|")


async def test_a_double_click_queues_one_job_and_a_later_press_a_new_one(slack: Slack) -> None:
    ts = await new_story(slack)
    await command(slack, "add a quiet harbour")
    on_the_page = "1700000123.000100"
    first = await pressed(slack, "again", f"{ts}|1-1", message_ts=on_the_page)
    again = await pressed(slack, "again", f"{ts}|1-1", message_ts=on_the_page)
    assert first == again == "page job #1 queued"
    assert slack.queue.submitted == [1]
    other = await pressed(slack, "again", f"{ts}|1-1", message_ts=on_the_page, user="U2")
    assert other == "page job #2 queued"  # another member's press is theirs
    await command(slack, "cancel 1")
    later = await pressed(slack, "again", f"{ts}|1-1", message_ts=on_the_page)
    assert later == "page job #3 queued"  # job 1 has ended: asking again is a new job
