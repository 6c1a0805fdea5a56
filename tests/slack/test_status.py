"""A job's status message: its place in the fair line, progress while it renders, its end;
results uploaded into the story thread once; the caps on waiting jobs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from storyloom.jobs.local import JobEvent
from storyloom.jobs.progress import JobProgress
from storyloom.story.model import JobStatus

from .conftest import Slack
from .helpers import command, job, new_story


def _status_message(slack: Slack, job_id: int) -> str:
    """The ts of job `job_id`'s status message."""
    for call in slack.fake.named("chat.postMessage"):
        if f"job #{job_id} queued" in str(call.params.get("text")):
            return str(call.answer["ts"])
    raise AssertionError(f"no status message for job {job_id}")


def _edits(slack: Slack, ts: str) -> list[str]:
    return [str(c.params["text"]) for c in slack.fake.named("chat.update") if c.params["ts"] == ts]


async def _set_status(slack: Slack, job_id: int, status: JobStatus) -> None:
    """What a worker records before it tells the bot (a start is a claim: one attempt)."""
    async with slack.db.writing() as uow:
        if status == JobStatus.RUNNING:
            seen = await uow.jobs.find(job_id)
            assert seen is not None and await uow.jobs.claim(job_id, seen, datetime.now(UTC))
        else:
            await uow.jobs.set_status(job_id, status, datetime.now(UTC))


async def test_progress_is_shown_in_place_with_panel_percent_and_time_left(slack: Slack) -> None:
    await new_story(slack)
    for n in range(4):
        await command(slack, f"add beat {n}")
    await command(slack, "render")
    (job_id,) = slack.queue.submitted
    ts = _status_message(slack, job_id)
    await _set_status(slack, job_id, JobStatus.RUNNING)
    running = await job(slack, job_id)
    await slack.adapter.notifier(JobEvent(running, JobStatus.RUNNING))
    half = JobProgress(done=10, total=20, panel=2, panels=4, eta_s=12.4)
    await slack.adapter.notifier(JobEvent(running, JobStatus.RUNNING, progress=half))
    edits = [c for c in slack.fake.named("chat.update") if c.params["ts"] == ts]
    assert [e.params["channel"] for e in edits] == ["C1", "C1"]
    assert edits[0].params["text"] == f"🎨 page job #{job_id} running"
    assert edits[1].params["text"] == (
        f"🎨 page job #{job_id} running · panel 2 of 4, 50%, about 12 s left"
    )
    shown = str(edits[1].params["blocks"])
    assert "▰" * 10 + "▱" * 10 in shown and "story_cancel" in shown


async def test_waiting_jobs_show_their_place_in_the_fair_line_and_move_up(slack: Slack) -> None:
    await new_story(slack, "Ours", team="T1")
    await new_story(slack, "Theirs", team="T2")
    await command(slack, "add a beat", team="T1")
    await command(slack, "add a beat", team="T2")
    await command(slack, "render", team="T1")
    await command(slack, "render", team="T1", user="U2")
    await command(slack, "render", team="T2")
    first, second, theirs = slack.queue.submitted
    # one workspace cannot push the other back: T2's job goes before T1's second
    posted = {c.answer["ts"]: str(c.params["text"]) for c in slack.fake.named("chat.postMessage")}
    assert posted[_status_message(slack, first)].endswith("next in the queue")
    assert posted[_status_message(slack, theirs)].endswith("place 2 in the queue")
    assert posted[_status_message(slack, second)].endswith("place 2 in the queue")
    # ... until T2's job went before it: its message was edited
    assert _edits(slack, _status_message(slack, second)) == [
        f"⏳ page job #{second} queued · place 3 in the queue"
    ]
    # the first job starts: the others' messages are edited to their new places
    await _set_status(slack, first, JobStatus.RUNNING)
    await slack.adapter.notifier(JobEvent(await job(slack, first), JobStatus.RUNNING))
    assert _edits(slack, _status_message(slack, theirs))[-1].endswith("next in the queue")
    assert _edits(slack, _status_message(slack, second))[-1].endswith("place 2 in the queue")
    # an event changes nothing for messages whose place did not change
    edits = len(slack.fake.named("chat.update"))
    await slack.adapter.notifier(JobEvent(await job(slack, first), JobStatus.RUNNING))
    assert len(slack.fake.named("chat.update")) == edits + 1  # only the running job's own


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
    ts = await new_story(slack)
    await command(slack, "add a beat")
    await command(slack, "render")
    (job_id,) = slack.queue.submitted
    status_ts = _status_message(slack, job_id)
    page = tmp_path / "page.png"
    page.write_bytes(b"\x89PNG fake page")
    await _set_status(slack, job_id, JobStatus.DONE)
    done = await job(slack, job_id)
    await slack.adapter.notifier(JobEvent(done, JobStatus.DONE, (page,)))
    assert _edits(slack, status_ts) == [f"✅ page job #{job_id} done"]
    assert "story_again" in str(slack.fake.named("chat.update")[-1].params["blocks"])
    complete = slack.fake.named("files.completeUploadExternal")[-1].params
    assert complete["channel_id"] == "C1" and complete["thread_ts"] == ts
    assert "*Harbour* — page for" in complete["initial_comment"]
    assert slack.fake.uploads == [b"\x89PNG fake page"]
    # a second DONE (a redelivery) posts nothing more
    await slack.adapter.notifier(JobEvent(done, JobStatus.DONE, (page,)))
    assert len(slack.fake.named("files.completeUploadExternal")) == 1
    assert (await job(slack, job_id)).posted


async def test_a_failure_is_shown_escaped(slack: Slack) -> None:
    await new_story(slack)
    await command(slack, "add a beat")
    await command(slack, "render")
    (job_id,) = slack.queue.submitted
    await _set_status(slack, job_id, JobStatus.FAILED)
    failed = await job(slack, job_id)
    await slack.adapter.notifier(
        JobEvent(failed, JobStatus.FAILED, error="out of <!channel> memory")
    )
    text = _edits(slack, _status_message(slack, job_id))[-1]
    assert text == f"⚠️ page job #{job_id} failed · out of &lt;!channel&gt; memory"
    assert not slack.fake.named("files.completeUploadExternal")


async def test_a_result_this_process_did_not_queue_goes_to_its_story_thread(
    slack: Slack, tmp_path: Path
) -> None:
    ts = await new_story(slack)
    await command(slack, "cast Mira a keeper in a yellow coat")
    await command(slack, "look Mira")
    (job_id,) = slack.queue.submitted
    slack.adapter.notifier.tracked.clear()  # as after a restart: nothing in memory
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"\x89PNG sheet")
    await _set_status(slack, job_id, JobStatus.DONE)
    await slack.adapter.notifier(JobEvent(await job(slack, job_id), JobStatus.DONE, (sheet,)))
    complete = slack.fake.named("files.completeUploadExternal")[-1].params
    assert complete["channel_id"] == "C1" and complete["thread_ts"] == ts
    follow_up = slack.fake.named("chat.postMessage")[-1].params
    assert follow_up["thread_ts"] == ts and "Keep Mira's look?" in follow_up["text"]
    assert "story_lock" in str(follow_up["blocks"]) and "story_reroll" in str(follow_up["blocks"])


async def test_a_deleted_status_message_does_not_stop_the_result(
    slack: Slack, tmp_path: Path
) -> None:
    ts = await new_story(slack)
    await command(slack, "add a beat")
    await command(slack, "render")
    (job_id,) = slack.queue.submitted
    slack.fake.errors["chat.update"] = "message_not_found"  # someone deleted it
    page = tmp_path / "page.png"
    page.write_bytes(b"\x89PNG")
    await _set_status(slack, job_id, JobStatus.DONE)
    await slack.adapter.notifier(JobEvent(await job(slack, job_id), JobStatus.DONE, (page,)))
    assert slack.fake.named("chat.update")[-1].answer["error"] == "message_not_found"
    complete = slack.fake.named("files.completeUploadExternal")[-1].params
    assert complete["thread_ts"] == ts


async def test_a_job_that_ends_before_its_message_is_posted_still_shows_its_end(
    slack: Slack, tmp_path: Path
) -> None:
    page = tmp_path / "page.png"
    page.write_bytes(b"\x89PNG quick")

    @dataclass
    class InstantQueue:
        """A worker so fast that the job is done before the bot posts its status message."""

        async def submit(self, job_id: int) -> None:
            await _set_status(slack, job_id, JobStatus.DONE)
            await slack.adapter.notifier(
                JobEvent(await job(slack, job_id), JobStatus.DONE, (page,))
            )

    slack.adapter.deps = replace(slack.adapter.deps, queue=InstantQueue())
    ts = await new_story(slack)
    await command(slack, "add a beat")
    assert "page job #1 queued" in await command(slack, "render")
    assert _edits(slack, _status_message(slack, 1)) == ["✅ page job #1 done"]
    assert slack.fake.named("files.completeUploadExternal")[-1].params["thread_ts"] == ts
    assert slack.adapter.notifier.tracked == {}
