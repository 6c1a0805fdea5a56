"""What members notice on Slack, through the real bolt app: every reply fits Slack's limits
at the largest a story gets (the fake refuses what Slack refuses), long lists page, beats
added from the channel appear in the thread, a channel the bot is not in gets an answer
through the command's response_url, and mentions of members read as their names."""

from __future__ import annotations

import asyncio
import re

from storyloom.story import service
from storyloom.story.escaping import escape_slack
from storyloom.story.limits import MAX_BEAT_CHARS, MAX_BEATS, MAX_CHARACTERS, MAX_NAME_CHARS
from storyloom.story.model import Actor

from .conftest import Slack
from .fake_slack import MAX_SECTION_TEXT
from .helpers import command, new_story, said

# every character grows when escaped for mrkdwn (`&` → `&amp;`, `*` → ZWSP * ZWSP)
WORST_TEXT = ("&*_~`" * MAX_BEAT_CHARS)[:MAX_BEAT_CHARS]


def text_of(number: int) -> str:
    """Beats of a long story: every tenth as long and as escaped as a beat can be, the rest
    of ordinary length (a page of the longest list holds a few)."""
    return WORST_TEXT if number % 10 == 0 else f"beat {number}" + " a quiet harbour" * 6


def writer(ts: str, number: int) -> Actor:
    return Actor("T1", "C1", ts, f"U{100 + number}", "&" * 29 + f"{number:03}")


async def test_the_longest_list_pages_within_a_section_and_shows_every_beat(
    slack: Slack,
) -> None:
    ts = await new_story(slack, "&" * 100)
    for number in range(MAX_BEATS):
        await service.add_beat(slack.adapter.deps, writer(ts, number % 25), text_of(number))
    first = await command(slack, "list")
    pages = int(re.search(r"page 1/(\d+) · 300 beats", first)[1])  # type: ignore[index]
    seen: list[int] = []
    for page in range(1, pages + 1):
        shown = await command(slack, f"list {page}")
        assert len(shown) <= MAX_SECTION_TEXT
        *lines, footer = shown.splitlines()
        assert footer.startswith(f"page {page}/{pages} · 300 beats")
        seen += [int(line.split("`")[1]) for line in lines]
        for line in lines:  # each beat whole, with its author: nothing cut off
            number = int(line.split("`")[1]) - 1
            assert line.endswith(
                escape_slack(text_of(number)) + " — " + "&amp;" * 29 + f"{number % 25:03}"
            )
    assert seen == list(range(1, MAX_BEATS + 1))
    print(f"\nSlack: the longest list, {MAX_BEATS} beats, in {pages} pages")
    assert await command(slack, f"list {pages + 1}") == f"✗ Pick a page from 1 to {pages}."


async def test_the_largest_replies_of_every_kind_fit(slack: Slack) -> None:
    ts = await new_story(slack, "&" * 100)
    for number in range(MAX_CHARACTERS):
        name = f"{'W' * (MAX_NAME_CHARS - 1)}{chr(ord('a') + number)}"
        assert "in the cast" in await command(slack, f"cast {name} {'&' * 300}")
    for number in range(MAX_BEATS):
        await service.add_beat(slack.adapter.deps, writer(ts, number), WORST_TEXT)
    assert "300 beats" in await command(slack, "status")
    refused = await command(slack, "style " + "&" * 3900)  # a slash command's most text
    assert refused.startswith("✗ Unknown style") and refused.endswith("…")
    # the most panels one job may draw (the render limits), from the end of the story
    assert "page job #1 queued" in await command(slack, "render 269 300")
    assert "clip job #2 queued" in await command(slack, "clip 277 300")
    assert "page job #3 queued" in await said(slack, "render 269 300", ts, replies=2)
    assert not slack.fake.refused


async def test_a_beat_added_from_the_channel_is_posted_into_the_thread_credited(
    slack: Slack,
) -> None:
    slack.fake.names["U1"] = "Ada *Lovelace*"
    ts = await new_story(slack)
    assert await command(slack, "add the *engine* hums") == "beat 1 added"
    [post] = [c for c in slack.fake.named("chat.postMessage") if c.params.get("thread_ts") == ts]
    z = "\u200b"
    name, engine = f"Ada {z}*{z}Lovelace{z}*{z}", f"{z}*{z}engine{z}*{z}"
    assert post.params["text"] == f"beat 1 by {name}: the {engine} hums"


async def test_a_channel_the_bot_is_not_in_is_answered_through_the_response_url(
    slack: Slack,
) -> None:
    slack.fake.errors["chat.postMessage"] = "not_in_channel"
    slack.fake.errors["chat.postEphemeral"] = "not_in_channel"
    assert await slack.send.command("new Harbour") == 200
    for _ in range(250):
        if slack.fake.responses:
            break
        await asyncio.sleep(0.02)
    [response] = slack.fake.responses
    assert response["response_type"] == "ephemeral"
    assert "/invite @storyloom" in response["text"] and response["text"].startswith("✗")
    assert await slack.stories.latest_open("T1", "C1") is None  # nothing was started


async def test_members_mentioned_in_a_beat_are_shown_by_name(slack: Slack) -> None:
    slack.fake.names["U7"] = "Grace"
    ts = await new_story(slack)
    posted = await said(slack, "add <@U7> waves from the pier", ts)
    assert posted == "beat 1 by U1: @Grace waves from the pier"
    assert "@Grace waves" in await command(slack, "list")
