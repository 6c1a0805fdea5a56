"""A job's status message, through the real job watcher: its place in the fair line,
progress while it renders, its end; results uploaded into the story thread once; the caps."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path

from storyloom.jobs import status_refs
from storyloom.jobs.progress import JobProgress

from . import worker_rows as worker
from .conftest import Slack
from .helpers import Chat, command, job, new_story, outcome_actions

OUT = "out"  # the watcher's output folder, under tmp_path (conftest)


def _status_message(slack: Chat, job_id: int) -> str:
    """The ts of job `job_id`'s status message."""
    for call in slack.fake.named("chat.postMessage"):
        if f" job #{job_id} queued" in str(call.params.get("text")):
            return str(call.answer["ts"])
    raise AssertionError(f"no status message for job {job_id}")


def _edits(slack: Chat, ts: str) -> list[str]:
    return [str(c.params["text"]) for c in slack.fake.named("chat.update") if c.params["ts"] == ts]


async def _one_job(slack: Slack, beats: int = 1) -> int:
    await new_story(slack)
    for n in range(beats):
        await command(slack, f"add beat {n}")
    await command(slack, "render")
    (job_id,) = slack.queue.submitted
    await slack.watcher.poll()  # it sees the job waiting: the message already says so
    return job_id


async def test_progress_is_shown_in_place_with_panel_percent_and_time_left(slack: Slack) -> None:
    job_id = await _one_job(slack, beats=4)
    ts = _status_message(slack, job_id)
    assert _edits(slack, ts) == []
    await worker.start(slack.db, job_id)
    await slack.watcher.poll()
    await worker.report(slack.db, job_id, JobProgress(10, 20, panel=2, panels=4, eta_s=12.4))
    await slack.watcher.poll()
    edits = [c for c in slack.fake.named("chat.update") if c.params["ts"] == ts]
    assert [e.params["channel"] for e in edits] == ["C1", "C1"]
    assert edits[0].params["text"] == f"🎨 page job #{job_id} running"
    assert edits[1].params["text"] == (
        f"🎨 page job #{job_id} running · panel 2 of 4, 50%, about 12 s left"
    )
    shown = str(edits[1].params["blocks"])
    assert "▰" * 10 + "▱" * 10 in shown and "story_cancel" in shown
    await slack.watcher.poll()  # nothing new on the row: nothing edited
    assert len(_edits(slack, ts)) == 2


async def test_waiting_jobs_show_their_place_in_the_fair_line_and_move_up(slack: Slack) -> None:
    await new_story(slack, "Ours", team="T1")
    await new_story(slack, "Theirs", team="T2")
    await command(slack, "add a beat", team="T1")
    await command(slack, "add a beat", team="T2")
    await command(slack, "render", team="T1")
    await command(slack, "render", team="T1", user="U2")
    await command(slack, "render", team="T2")
    first, second, theirs = slack.queue.submitted
    posted = {c.answer["ts"]: str(c.params["text"]) for c in slack.fake.named("chat.postMessage")}
    assert posted[_status_message(slack, first)].endswith("next in the queue")
    assert posted[_status_message(slack, second)].endswith("place 2 in the queue")
    assert posted[_status_message(slack, theirs)].endswith("place 2 in the queue")
    # one workspace cannot push the other back: T2's job went before T1's second
    await slack.watcher.poll()
    assert _edits(slack, _status_message(slack, second)) == [
        f"⏳ page job #{second} queued · place 3 in the queue"
    ]
    assert _edits(slack, _status_message(slack, first)) == []  # its place did not change
    # the first job starts: the others' messages are edited to their new places
    await worker.start(slack.db, first)
    await slack.watcher.poll()
    assert _edits(slack, _status_message(slack, theirs))[-1].endswith("next in the queue")
    assert _edits(slack, _status_message(slack, second))[-1].endswith("place 2 in the queue")
    edits = len(slack.fake.named("chat.update"))
    await slack.watcher.poll()
    assert len(slack.fake.named("chat.update")) == edits


async def test_a_member_over_the_cap_is_told_and_nothing_is_queued(slack: Slack) -> None:
    await new_story(slack)
    await command(slack, "add a beat")
    for _ in range(3):
        assert "queued" in await command(slack, "render")
    posts = len(slack.fake.named("chat.postMessage"))
    refused = await command(slack, "render")
    assert refused.startswith("✗ You already have 3 jobs waiting (the limit is 3)")
    assert len(slack.queue.submitted) == 3
    assert len(slack.fake.named("chat.postMessage")) == posts  # no status message either
    assert "queued" in await command(slack, "render", user="U2")  # others still may


async def test_the_page_is_uploaded_into_the_thread_once(slack: Slack, tmp_path: Path) -> None:
    job_id = await _one_job(slack, beats=3)
    status_ts = _status_message(slack, job_id)
    ts = slack.fake.named("chat.update")[0].params["ts"]  # the anchor: the story thread
    await worker.start(slack.db, job_id)
    await worker.finish(slack.db, tmp_path / OUT, job_id, {"page-1.png": b"\x89PNG page"})
    await slack.watcher.poll()
    assert _edits(slack, status_ts) == [f"✅ page job #{job_id} done"]
    assert "story_again" in str(slack.fake.named("chat.update")[-1].params["blocks"])
    complete = slack.fake.named("files.completeUploadExternal")[-1].params
    assert complete["channel_id"] == "C1" and complete["thread_ts"] == ts
    assert complete["initial_comment"] == f"*Harbour* — page for U1 · job #{job_id}"
    assert slack.fake.uploads == [b"\x89PNG page"]
    # the image says what it shows, from the beats (Slack's alt_txt)
    [asked] = slack.fake.named("files.getUploadURLExternal")
    assert str(asked.params["alt_txt"]).startswith("Comic page of “Harbour”, 3 panels: 1. ")
    # the status message, above the page, offers a Redraw button per panel: the thread
    # holds two messages of this render (the status message and the upload), no third
    assert slack.fake.named("chat.update")[-1].params["ts"] == status_ts
    ids = [e["action_id"] for e in outcome_actions(slack, "story_redraw")]
    assert ids == ["story_redraw:b1", "story_redraw:b2", "story_redraw:b3"]
    posted = slack.fake.named("chat.postMessage")
    of_job = [c for c in posted if c.params.get("thread_ts") and "job #" in c.params["text"]]
    assert [c.answer["ts"] for c in of_job] == [status_ts]  # beside the one upload
    # the watcher reports each outcome once: later polls post nothing more
    await slack.watcher.poll()
    await slack.watcher.poll()
    assert len(slack.fake.named("files.completeUploadExternal")) == 1
    assert (await job(slack, job_id)).posted


async def test_a_failure_is_shown_escaped(slack: Slack) -> None:
    job_id = await _one_job(slack)
    await worker.start(slack.db, job_id)
    await worker.fail(slack.db, job_id, "out of <!channel> memory")
    await slack.watcher.poll()
    text = _edits(slack, _status_message(slack, job_id))[-1]
    assert text == f"⚠️ page job #{job_id} failed · out of &lt;!channel&gt; memory"
    assert not slack.fake.named("files.completeUploadExternal")


async def test_a_job_cancelled_while_it_waits_says_so(slack: Slack) -> None:
    job_id = await _one_job(slack)
    assert f"job #{job_id} cancelled" in await command(slack, "cancel")
    await slack.watcher.poll()
    (edit,) = [c for c in slack.fake.named("chat.update") if c.params["ts"] != _anchor(slack)]
    assert edit.params["text"] == f"✖️ page job #{job_id} cancelled"
    assert "story_again" in str(edit.params["blocks"])  # over: render again, not cancel


def _anchor(slack: Slack) -> str:
    return str(slack.fake.named("chat.update")[0].params["ts"])


async def test_a_job_this_process_did_not_queue_is_shown_from_its_row(
    slack: Slack, tmp_path: Path
) -> None:
    await new_story(slack)
    await command(slack, "cast Mira a keeper in a yellow coat")
    await command(slack, "look Mira")
    (job_id,) = slack.queue.submitted
    status_ts = _status_message(slack, job_id)
    slack.adapter.notifier.tracked.clear()  # as after a restart: nothing in memory
    await worker.start(slack.db, job_id)
    await worker.finish(slack.db, tmp_path / OUT, job_id, {"sheet.png": b"\x89PNG sheet"})
    await slack.watcher.poll()
    # the row's status_ref named the message
    assert _edits(slack, status_ts) == [f"✅ sheet job #{job_id} done"]
    complete = slack.fake.named("files.completeUploadExternal")[-1].params
    assert complete["thread_ts"] == _anchor(slack)
    # the status message offers what comes next: lock this look, or try another
    assert slack.fake.named("chat.update")[-1].params["ts"] == status_ts
    lock, reroll = outcome_actions(slack, "story_lock")
    assert (lock["action_id"], reroll["action_id"]) == ("story_lock", "story_reroll")


async def test_a_deleted_status_message_does_not_stop_the_result(
    slack: Slack, tmp_path: Path
) -> None:
    job_id = await _one_job(slack)
    slack.fake.errors["chat.update"] = "message_not_found"  # someone deleted it
    await worker.finish(slack.db, tmp_path / OUT, job_id, {"page-1.png": b"\x89PNG"})
    await slack.watcher.poll()
    assert slack.fake.named("chat.update")[-1].answer["error"] == "message_not_found"
    complete = slack.fake.named("files.completeUploadExternal")[-1].params
    assert complete["thread_ts"] == _anchor(slack)
    # the buttons it would have carried go under the upload
    offer = slack.fake.named("chat.postMessage")[-1].params
    assert offer["thread_ts"] == _anchor(slack) and "story_again" not in str(offer["blocks"])
    assert "story_redraw" in str(offer["blocks"])


async def test_a_job_that_ends_before_its_message_is_posted_still_shows_its_end(
    slack: Slack, tmp_path: Path
) -> None:
    @dataclass
    class InstantQueue:
        """A worker so fast that the job is done, and reported, before the bot has
        posted its status message."""

        async def submit(self, job_id: int) -> None:
            await worker.finish(slack.db, tmp_path / OUT, job_id, {"page-1.png": b"\x89PNG"})
            await slack.watcher.poll()

    slack.adapter.deps = replace(slack.adapter.deps, queue=InstantQueue())
    ts = await new_story(slack)
    await command(slack, "add a beat")
    assert "page job #1 queued" in await command(slack, "render")
    await slack.watcher.poll()  # the outbox's next round: the final edit is owed again
    assert _edits(slack, _status_message(slack, 1)) == ["✅ page job #1 done"]
    assert slack.fake.named("files.completeUploadExternal")[-1].params["thread_ts"] == ts
    assert slack.adapter.notifier.tracked == {}


async def test_a_status_message_known_only_during_the_upload_still_ends_in_the_outcome(
    slack: Slack, tmp_path: Path
) -> None:
    job_id = await _one_job(slack)
    status_ts = _status_message(slack, job_id)
    ref = (await job(slack, job_id)).status_ref
    assert ref is not None
    async with slack.db.writing() as uow:  # as if its message were still being posted
        await uow.jobs.set_status_ref(job_id, status_refs.CLAIMED)
    slack.adapter.notifier.tracked.clear()
    slack.fake.delay_s["files.completeUploadExternal"] = 0.5  # an upload takes its time
    await worker.finish(slack.db, tmp_path / OUT, job_id, {"page-1.png": b"\x89PNG"})
    delivering = asyncio.create_task(slack.watcher.poll())
    await slack.fake.wait_for("files.getUploadURLExternal")  # the upload has begun
    await status_refs.remember(slack.db, job_id, ref)  # the message is known now
    await delivering
    await slack.watcher.poll()
    assert _edits(slack, status_ts)[-1] == f"✅ page job #{job_id} done"
    assert len(slack.fake.named("files.completeUploadExternal")) == 1
