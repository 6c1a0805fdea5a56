"""/story share, unshare and links through the real discord.py code: ephemeral answers, the
setting named when sharing is off, owners and moderators only, and a link that opens the
story until it is revoked."""

from __future__ import annotations

import re

from storyloom.storage.share_links import share_links
from storyloom.story import sharing

from .fake_discord import FakeDiscord, slash, thread
from .harness import ANN, BOB, MOD, THREAD, Running, ask

EPHEMERAL = 1 << 6


async def private(running: Running, fake: FakeDiscord, payload: dict) -> str:
    """Ask, and check that the deferral and the answer are both ephemeral."""
    text = await ask(running, fake, payload)
    calls = [c for c in fake.calls if payload["token"] in c.path]
    assert calls[0].json["data"]["flags"] & EPHEMERAL  # type: ignore[index]
    assert calls[-1].json["flags"] & EPHEMERAL  # type: ignore[index]
    return text


async def test_share_unshare_and_links_through_discord(running: Running, fake: FakeDiscord) -> None:
    db = running.bot.deps.db
    assert (await ask(running, fake, slash("new", THREAD, ANN, title="Tide"))).startswith("📖")

    off = await private(running, fake, slash("share", THREAD, ANN))
    # markdown-escaped, as every domain sentence is: it shows as STORYLOOM_PUBLIC_BASE_URL
    assert r"STORYLOOM\_PUBLIC\_BASE\_URL" in off and off.startswith("✗")

    running.bot.public_base_url = "https://comics.example.org"
    refused = await private(running, fake, slash("share", THREAD, BOB))
    assert refused == "✗ Only the story's owner or a moderator can share it."
    answer = await private(running, fake, slash("share", THREAD, ANN))
    url = re.search(r"https://comics\.example\.org/s/(\S+)", answer)
    assert url is not None and "link #1" in answer
    assert await sharing.story_of_token(db, share_links, url[1]) is not None

    assert (await private(running, fake, slash("links", THREAD, BOB))).startswith("✗ Only mod")
    listed = await private(running, fake, slash("links", thread(3002), MOD))
    assert listed.splitlines()[0].startswith("#1 Tide — by Ann, ")

    revoked = await private(running, fake, slash("unshare", thread(3002), MOD, link=1))
    assert revoked == "Revoked share link #1: they open nothing now."
    assert await sharing.story_of_token(db, share_links, url[1]) is None
    gone = await private(running, fake, slash("unshare", THREAD, ANN))
    assert gone == "✗ This story has no share links."
