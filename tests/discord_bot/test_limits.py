"""The largest story members can make, through the real discord.py code: every reply fits
Discord's limits (the fake answers 400 / 50035 as Discord does, and the `fake` fixture
fails a test that was refused), long lists page, and no beat is lost between pages."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from storyloom.story import service
from storyloom.story.limits import MAX_BEAT_CHARS, MAX_BEATS, MAX_CHARACTERS, MAX_NAME_CHARS
from storyloom.story.model import Actor

from .fake_discord import GUILD_ID, MAX_CONTENT, FakeDiscord, slash
from .harness import ANN, THREAD, Running, ask, buttons

THREAD_ID = int(THREAD["id"])
# every character doubles when escaped for Discord markdown: the longest a beat can show
WORST_TEXT = ("*_~`|" * MAX_BEAT_CHARS)[:MAX_BEAT_CHARS]
WORST_NAME = "_" * 32  # a display name of 32 markdown characters


def escaped(text: str) -> str:
    return re.sub(r"([*_~`|])", r"\\\1", text)


def text_of(number: int) -> str:
    """Beats of a long story: every tenth as long and as escaped as a beat can be, the rest
    of ordinary length (a page of the longest list holds a few)."""
    return WORST_TEXT if number % 10 == 0 else f"beat {number}" + " a quiet harbour" * 6


def writer(number: int) -> Actor:
    return Actor(
        workspace_id=str(GUILD_ID),
        channel_id=THREAD["parent_id"],
        thread_id=THREAD["id"],
        member_id=str(100 + number),
        display_name=WORST_NAME[:-3] + f"{number:03}",
    )


def autocomplete(option: str, typed: Any, who: dict[str, Any]) -> dict[str, Any]:
    """An APPLICATION_COMMAND_AUTOCOMPLETE payload for `/story render <option>`."""
    payload = slash("render", THREAD, who)
    payload["type"] = 4
    payload["data"]["options"][0]["options"] = [
        {"type": 4, "name": option, "value": typed, "focused": True}
    ]
    return payload


async def until_answered(fake: FakeDiscord, kind: int) -> list[dict[str, Any]]:
    """The choices of the first interaction callback of this type (8: autocomplete)."""
    for _ in range(500):
        for call in fake.where("POST", "/callback"):
            if (call.json or {}).get("type") == kind:
                return list((call.json or {})["data"]["choices"])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no callback of type {kind}")


async def test_the_longest_list_pages_within_discords_limit_and_shows_every_beat(
    running: Running, fake: FakeDiscord
) -> None:
    await ask(running, fake, slash("new", THREAD, ANN, title="*_" * 50))
    deps = running.bot.deps
    for number in range(MAX_BEATS):
        await service.add_beat(deps, writer(number % 25), text_of(number))

    first = await ask(running, fake, slash("list", THREAD, ANN))
    pages = int(re.search(r"page 1/(\d+) · 300 beats", first)[1])  # type: ignore[index]
    seen: list[int] = []
    for page in range(1, pages + 1):
        shown = await ask(running, fake, slash("list", THREAD, ANN, page=page))
        assert len(shown) <= MAX_CONTENT
        *lines, footer = shown.splitlines()
        assert footer.startswith(f"page {page}/{pages} · 300 beats")
        assert ("next: `/story list page:" in footer) == (page < pages)
        seen += [int(line.split("`")[1]) for line in lines]
        for line in lines:  # each beat whole, with its author: nothing cut off
            number = int(line.split("`")[1]) - 1
            assert f"` {escaped(text_of(number))} — " in line
    assert seen == list(range(1, MAX_BEATS + 1))
    past = await ask(running, fake, slash("list", THREAD, ANN, page=pages + 1))
    assert past == f"✗ Pick a page from 1 to {pages}."
    print(f"\nDiscord: the longest list, {MAX_BEATS} beats, in {pages} pages")


async def test_the_largest_replies_of_every_kind_fit(running: Running, fake: FakeDiscord) -> None:
    title = "*_" * 50  # 100 characters, 200 escaped
    assert (await ask(running, fake, slash("new", THREAD, ANN, title=title))).startswith("📖")
    for number in range(MAX_CHARACTERS):
        name = f"{'W' * (MAX_NAME_CHARS - 1)}{chr(ord('a') + number)}"
        await ask(running, fake, slash("cast", THREAD, ANN, name=name, description="~" * 300))
    deps = running.bot.deps
    for number in range(30):  # more than autocomplete shows (25)
        await service.add_beat(deps, writer(number), WORST_TEXT)

    # every reply kind at its largest: status, a refusal quoting long input, autocomplete
    status = await ask(running, fake, slash("status", THREAD, ANN))
    assert title[:10].replace("*", "\\*").replace("_", "\\_") in status
    refused = await ask(running, fake, slash("style", THREAD, ANN, name="*" * 6000))
    assert refused.startswith("✗ Unknown style") and refused.endswith("…")
    running.send(autocomplete("first", "", ANN))
    choices = await until_answered(fake, 8)
    assert len(choices) == 25

    # the page's result: credits of 22 authors, buttons for its panels, within the limits
    # more panels than buttons (20), more authors than the credits name (20)
    asked = slash("render", THREAD, ANN, first=1, last=22)
    assert await ask(running, fake, asked) == "page job #1 queued"
    await running.jobs.drain()
    [result] = await fake.wait_for_uploads(f"/channels/{THREAD_ID}/messages")
    content = (result.json or {})["content"]
    assert len(content) <= MAX_CONTENT and "and 2 more" in content
    ids = buttons(result)
    assert ids[:2] == ["story:again:j1", "story:clip:j1"] and len(ids) == 22
    assert not fake.refusals()


async def test_the_fake_refuses_what_discord_refuses(running: Running, fake: FakeDiscord) -> None:
    """The fake's rules are real: an over-long message is answered 400 / 50035."""
    import discord

    channel = running.bot.get_partial_messageable(THREAD_ID)
    try:
        await channel.send("x" * (MAX_CONTENT + 1))
    except discord.HTTPException as error:
        assert error.status == 400 and error.code == 50035
    else:
        raise AssertionError("a 2,001-character message was taken")
    assert fake.refusals()
    fake.calls.clear()  # the fixture's own check is for the bot's messages
