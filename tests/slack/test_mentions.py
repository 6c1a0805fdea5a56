"""`@storyloom …` mentions in a story thread: every subcommand, answered in the thread."""

from __future__ import annotations

from .conftest import Slack
from .helpers import command, new_story, said, story_of


async def test_every_subcommand_works_as_a_mention_in_the_thread(slack: Slack) -> None:
    old = await new_story(slack, "Old")
    ts = await new_story(slack, "Harbour")
    slack.fake.names["U1"] = "Ada"
    script = [
        # (mention, bot messages it causes in the thread, what the last one says)
        ("cast Mira a keeper in a yellow coat", 1, "*Mira* is in the cast"),
        # (a new beat is posted once, credited; U1's name was read before it changed)
        ("add [Mira] climbs the stairs # Mira: Nearly there", 1, "beat 1 by U1: [Mira] climbs"),
        ("add the lamp flickers", 1, "beat 2 by U1: the lamp flickers"),
        ("edit 2 the lamp goes dark", 1, "beat 2 edited"),
        ("move 2 1", 1, "beat moved to 1"),
        ("list", 1, "page 1/1 · 2 beats"),
        ("add a gull cries", 1, "beat 3"),
        ("remove 3", 1, "beat 3 removed"),
        ("add a gull cries again", 1, "beat 3"),
        ("undo", 1, "beat 3 removed"),
        ("style manga", 1, "style is now manga"),
        ("render", 2, "page job #1 queued"),
        ("clip 1 2", 2, "clip job #2 queued"),
        ("status", 1, "*Harbour* (#2) · 2 beats"),
        ("cancel", 1, "job #2 cancelled"),
        ("look Mira", 2, "character sheet for Mira queued"),
        ("look Mira reroll", 2, "character sheet for Mira queued"),
        ("export", 1, "story file:"),
        ("frobnicate", 1, "*storyloom* —"),
        ("delete", 1, "story *Harbour* deleted"),
    ]
    for text, replies, expected in script:
        answer = await said(slack, text, ts, replies)
        assert expected in answer, (text, answer)
    # every message went into the story's thread, none into the old story's or the channel
    posted = slack.fake.named("chat.postMessage")[2:]  # after the two anchors
    assert {c.params["thread_ts"] for c in posted} == {ts}
    assert old not in {c.params.get("thread_ts") for c in slack.fake.calls}
    assert len(slack.queue.submitted) == 4  # render, clip and two character sheets
    # the status messages: a job line with a Cancel button, in the thread
    status = [c.params for c in posted if "queued ·" in str(c.params["text"])]
    assert len(status) == 4 and all("story_cancel" in str(s["blocks"]) for s in status)
    # the story file went up with files_upload_v2, into the thread
    (upload,) = slack.fake.uploads
    assert b'title = "Harbour"' in upload and b"climbs the stairs" in upload
    complete = slack.fake.named("files.completeUploadExternal")[0].params
    assert complete["thread_ts"] == ts
    assert (await story_of(slack)).title == "Old"  # the other story is untouched


async def test_a_mention_outside_a_thread_points_to_the_thread(slack: Slack) -> None:
    await new_story(slack)
    answer = await said(slack, "add lost beat", None)
    assert "Mention me inside a story's thread" in answer
    assert "lost beat" not in await command(slack, "list")


async def test_a_mention_in_a_thread_without_a_story_says_how_to_start_one(slack: Slack) -> None:
    assert "/story new" in await said(slack, "add a beat", "1700000000.999999")
    assert await slack.stories.latest_open("T1", "C1") is None


async def test_mention_markup_in_a_beat_is_stored_as_plain_words(slack: Slack) -> None:
    ts = await new_story(slack)
    await said(slack, "add <@U2|grace> waves at <#C9|harbour> &amp; <https://x.test|the sea>", ts)
    listing = await command(slack, "list")
    assert "@grace waves at #harbour &amp; the sea" in listing  # escaped once, on the way out


async def test_a_mention_slack_delivers_twice_queues_one_job(slack: Slack) -> None:
    ts = await new_story(slack)
    await command(slack, "add a quiet harbour")
    first = await said(slack, "render", ts, replies=2, event_id="Ev0RETRIED")
    again = await said(slack, "render", ts, event_id="Ev0RETRIED")  # an answer, no status
    assert "page job #1 queued" in first and "page job #1 queued" in again
    assert slack.queue.submitted == [1]
    statuses = [c for c in slack.fake.named("chat.postMessage") if "⏳" in c.params["text"]]
    assert len(statuses) == 1
