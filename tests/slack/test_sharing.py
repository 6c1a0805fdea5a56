"""/story share, unshare and links through the real slack-bolt code: private answers, the
setting named when sharing is off, owners and workspace admins only."""

from __future__ import annotations

import re

from storyloom.bot.slack.commands import SUBCOMMANDS
from storyloom.bot.slack.share_commands import share_subcommands
from storyloom.storage.share_links import share_links
from storyloom.story import sharing
from storyloom.story.model import Actor

from .conftest import Slack
from .helpers import command, new_story, said

ADMIN = Actor("T1", "C1", "x", "UADMIN", "Admin", is_moderator=True)


async def test_share_unshare_and_links_through_slack(slack: Slack) -> None:
    slack.fake.admins.add("UADMIN")
    ts = await new_story(slack, user="UOWNER")
    # mrkdwn escaping puts zero-width spaces around `_`: read the text as members see it
    off = (await command(slack, "share", user="UOWNER")).replace("\u200b", "")
    assert off.startswith("✗ Sharing is not set up") and "STORYLOOM_PUBLIC_BASE_URL" in off

    slack.adapter.subcommands = {**SUBCOMMANDS, **share_subcommands("https://c.example/")}
    assert await command(slack, "share", user="UGUEST") == (
        "✗ Only the story's owner or a moderator can share it."
    )
    answer = await command(slack, "share", user="UOWNER")
    token = re.search(r"https://c\.example/s/(\S+)", answer)
    assert token is not None and "link #1" in answer
    assert await sharing.story_of_token(slack.db, share_links, token[1]) is not None
    # answered privately: never posted where the channel or thread sees it
    posted = [str(c.params.get("text")) for c in slack.fake.named("chat.postMessage")]
    assert not any(token[1] in text for text in posted)
    # a thread mention does not offer it (its answer would be public)
    assert "share" in await said(slack, "share", ts, user="UOWNER")  # the help line
    assert len(await sharing.server_links(slack.adapter.deps, share_links, ADMIN)) == 1

    assert (await command(slack, "links", user="UGUEST")).startswith("✗ Only moderators")
    listed = await command(slack, "links", user="UADMIN")
    assert listed.startswith("#1 Harbour — by ")
    assert (await command(slack, "unshare two", user="UADMIN")).startswith("✗ Give one link")
    assert await command(slack, "unshare 1", user="UADMIN") == (
        "Revoked share link #1: they open nothing now."
    )
    assert await sharing.story_of_token(slack.db, share_links, token[1]) is None
    assert await command(slack, "links", user="UADMIN") == "This server has no live share links."
