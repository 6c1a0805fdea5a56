"""Requests Slack did not sign are refused; beats cannot ping; workspaces stay apart."""

from __future__ import annotations

import time

from .conftest import Slack
from .helpers import command, new_story, said


async def test_a_mention_injection_beat_is_neutralised(slack: Slack) -> None:
    ts = await new_story(slack)
    await command(slack, "add <!channel> <!here> &lt;!everyone&gt; <@U2> wake up")
    await said(slack, "add <!here|here> again @channel <!subteam^S1|@team>", ts)
    listing = await command(slack, "list")
    assert "wake up" in listing and "again" in listing
    for text in slack.fake.texts():
        for ping in ("<!channel>", "<!here", "<!everyone>", "<@U2>", "<!subteam", " @channel",
                     " @here"):  # fmt: skip
            assert ping not in text, text


async def test_a_bad_signature_or_a_stale_timestamp_is_refused_and_stores_nothing(
    slack: Slack,
) -> None:
    assert await slack.send.command("new Forged", secret="not-the-secret") == 401
    stale = int(time.time()) - 10 * 60
    assert await slack.send.command("new Replayed", timestamp=stale) == 401
    assert await slack.send.mention("add forged beat", "1700000000.000001", secret="nope") == 401
    assert await slack.send.button("again", "1700000000.000001|", secret="nope") == 401
    assert await slack.stories.latest_open("T1", "C1") is None
    assert [c for c in slack.fake.calls if c.method != "auth.test"] == []
    async with slack.db.reading() as uow:
        assert await uow.jobs.unposted() == []


async def test_two_workspaces_never_see_each_others_stories(slack: Slack) -> None:
    ts = await new_story(slack, "Ours", team="T1")
    await command(slack, "add a secret beat", team="T1")
    assert "/story new" in await command(slack, "list", team="T2")
    story = await slack.stories.latest_open("T1", "C1")
    assert story is not None
    async with slack.db.reading() as uow:
        ours = await uow.stories.get(story)
    assert ours is not None
    assert f"no story #{ours.id}" in await command(slack, f"#{ours.id} list", team="T2")
    # the same channel and thread ids in another workspace are another place
    assert "/story new" in await said(slack, "list", ts, team="T2")
    await new_story(slack, "Theirs", team="T2")
    assert "secret" not in await command(slack, "list", team="T2")
    assert "secret" in await command(slack, "list", team="T1")
