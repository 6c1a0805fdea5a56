"""/story subcommands through the real bolt app: signed form posts in, Web API calls out."""

from __future__ import annotations

from .conftest import Slack


async def _new(slack: Slack, title: str = "The Lighthouse", **kw: str) -> str:
    """Start a story; return its anchor's ts (the story thread)."""
    before = len(slack.fake.named("chat.update"))
    assert await slack.send.command(f"new {title}", **kw) == 200
    updates = await slack.fake.wait_for("chat.update", before + 1)
    return str(updates[-1].params["ts"])


async def _answers(slack: Slack, count: int) -> list[str]:
    calls = await slack.fake.wait_for("chat.postEphemeral", count)
    return [str(c.params["text"]) for c in calls]


async def test_new_posts_an_anchor_whose_thread_is_the_story(slack: Slack) -> None:
    ts = await _new(slack)
    anchor = slack.fake.named("chat.update")[-1].params
    assert "The Lighthouse" in anchor["text"]
    assert "story_add" in str(anchor["blocks"])  # the add-a-beat button
    found = await slack.stories.latest_open("T1", "C1")
    assert found is not None and found.thread_id == ts
    assert "started" in (await _answers(slack, 1))[0]


async def test_every_subcommand_acts_on_the_channels_latest_story(slack: Slack) -> None:
    await _new(slack, "Old")
    ts = await _new(slack, "New")
    script = [
        ("cast Mira a lighthouse keeper in a yellow coat", "is in the cast"),
        ("add [Mira] climbs the stairs # Mira: Nearly there", "beat 1"),
        ("add the lamp flickers", "beat 2"),
        ("edit 2 the lamp goes dark", "beat 2 edited"),
        ("move 2 1", "beat moved to 1"),
        ("list", "2 beats"),
        ("add a gull cries", "beat 3"),
        ("remove 3", "beat 3 removed"),
        ("add a gull cries again", "beat 3"),
        ("undo", "beat 3 removed"),
        ("style manga", "style is now manga"),
        ("render", "page job"),
        ("clip 1 2", "clip job"),
        ("status", "2 beats"),
        ("cancel", "cancelled"),
        ("look Mira", "character sheet for Mira queued"),
        ("export", "story file"),
        ("frobnicate", "storyloom"),
        ("delete", "deleted"),
    ]
    for n, (text, expected) in enumerate(script, start=3):  # two answers from the two news
        assert await slack.send.command(text) == 200
        answer = (await _answers(slack, n))[-1]
        assert expected in answer, (text, answer)
    # everything went to the newest story's thread, none to the old one
    threaded = [c for c in slack.fake.calls if "thread_ts" in c.params]
    assert threaded and {c.params["thread_ts"] for c in threaded} == {ts}
    assert len(slack.queue.submitted) == 3  # render, clip, the character sheet
    assert slack.fake.uploads  # the story file went up with files_upload_v2


async def test_hash_id_names_an_older_story(slack: Slack) -> None:
    old = await _new(slack, "Old")
    await _new(slack, "New")
    story = await slack.stories.latest_open("T1", "C1")
    assert story is not None
    async with slack.db.reading() as uow:
        old_story = await uow.stories.get(story.__class__("T1", "C1", old))
    assert old_story is not None
    assert await slack.send.command(f"#{old_story.id} add a storm rolls in") == 200
    assert "beat 1" in (await _answers(slack, 3))[-1]
    assert await slack.send.command("#999 add nowhere") == 200
    assert "no story #999" in (await _answers(slack, 4))[-1]


async def test_a_command_without_a_story_says_how_to_start_one(slack: Slack) -> None:
    assert await slack.send.command("add [Mira] waves") == 200
    assert "/story new" in (await _answers(slack, 1))[0]
    assert slack.fake.named("chat.postMessage") == []
