"""The character library through the real discord.py code: /character subcommands, a
reference picture attached to /story cast (read from the CDN only when its size fits), a
sheet and a character file posted within the limits, and the library's permissions."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from storyloom.bot.discord.run import story_bot
from storyloom.config import load_settings
from storyloom.generation.renderer import StoryRenderer
from storyloom.storage import SqlDatabase
from storyloom.storage.library_repo import library as library_of
from storyloom.story.library_ports import LibraryCharacter
from storyloom.story.model import LockState, ThreadKey
from storyloom.story.service import utc_now

from .fake_discord import GUILD_ID, FakeDiscord, slash, thread
from .harness import ANN, BOB, MOD, THREAD, Running, ask

OTHER = thread(3002)


Files = dict[str, dict[str, Any]] | None


def character(
    sub: str, channel: dict[str, Any], who: dict[str, Any], files: Files = None, **options: Any
) -> dict[str, Any]:
    """An INTERACTION_CREATE payload for `/character <sub> option=value…`; `files`: the
    attachment options (option name → attachment)."""
    return _command("character", sub, channel, who, files, options)


def story(
    sub: str, channel: dict[str, Any], who: dict[str, Any], files: Files = None, **options: Any
) -> dict[str, Any]:
    """`/story <sub>` with attachment options."""
    return _command("story", sub, channel, who, files, options)


def _command(
    group: str, sub: str, channel: dict[str, Any], who: dict[str, Any], files: Files,
    options: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    payload = slash(sub, channel, who, **options)
    payload["data"]["name"] = group
    for name, attachment in (files or {}).items():
        payload["data"]["options"][0]["options"].append(
            {"type": 11, "name": name, "value": attachment["id"]}
        )
        resolved = payload["data"].setdefault("resolved", {}).setdefault("attachments", {})
        resolved[attachment["id"]] = attachment
    return payload


@pytest.fixture
async def bot(fake: FakeDiscord, db: SqlDatabase, tmp_path: Path) -> AsyncIterator[Running]:
    settings = load_settings(
        output_dir=tmp_path / "out", character_dir=tmp_path / "characters", queue="embedded",
        model="tiny-sdxl", model_cache_dir=tmp_path / "models", width=64, height=64, steps=2,
        adapter_model="tiny-ip-adapter",  # characters from a picture need an image adapter
    )  # fmt: skip
    async with story_bot(
        settings, db, load_renderer=lambda: StoryRenderer.from_settings(settings),
        detector=lambda: lambda image: [],
        watch_every_s=0.05,
    ) as started:  # fmt: skip
        await started.login("fake-bot-token")
        try:
            yield Running(started)
        finally:
            await started.close()


def photo() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (180, 60, 60)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


async def lock_state(db: SqlDatabase, thread_id: str) -> LockState:
    async with db.reading() as uow:
        story_row = await uow.stories.get(ThreadKey(str(GUILD_ID), "4242", thread_id))
        assert story_row is not None
        (mira,) = await uow.characters.list(story_row.id)
    return mira.lock_state


async def test_the_library_through_discord(
    bot: Running, fake: FakeDiscord, db: SqlDatabase, tmp_path: Path
) -> None:
    await ask(bot, fake, slash("new", THREAD, ANN, title="One"))
    huge = fake.attachment("huge.png", b"\0" * (9 * 2**20), "image/png")
    refused = await ask(bot, fake, story("cast", THREAD, ANN, {"picture": huge}, name="Mira",
                                         description="a girl"))  # fmt: skip
    assert refused == "✗ The reference picture is 9.0 MiB; the limit is 8 MiB."
    assert not fake.where("GET", "/attachments/")  # refused by its declared size, not fetched
    picture = fake.attachment("mira.jpg", photo(), "image/jpeg")
    cast = await ask(bot, fake, story("cast", THREAD, ANN, {"picture": picture}, name="Mira",
                                      description="a girl with red hair"))  # fmt: skip
    assert cast == "**Mira** is in the cast with a reference picture"
    (kept,) = (tmp_path / "characters").iterdir()
    assert Image.open(kept).format == "PNG" and not Image.open(kept).getexif()

    await ask(bot, fake, slash("look", THREAD, ANN, name="Mira"))
    while await lock_state(db, THREAD["id"]) is not LockState.SHEET_RENDERED:
        await asyncio.sleep(0.05)
    await ask(bot, fake, slash("look", THREAD, ANN, name="Mira", action="lock"))

    saved = await ask(bot, fake, character("save", THREAD, ANN, name="mira"))
    assert saved.startswith("Mira is in this server's library (look locked)")
    token = (shown := character("show", THREAD, BOB, name="Mira"))["token"]
    text = await ask(bot, fake, shown)
    assert text.startswith("Mira (comic, look locked, reference picture): a girl with red hair")
    (post,) = fake.where("POST", f"/webhooks/555/{token}")
    assert post.files and post.files[0][0] == "Mira-sheet.png"
    assert Image.open(io.BytesIO(post.uploads[0][1])).format == "PNG"

    denied = await ask(bot, fake, character("delete", THREAD, BOB, name="Mira"))
    assert denied == "✗ Mira was saved by Ann; only they or a moderator can delete it."

    await ask(bot, fake, slash("new", OTHER, BOB, title="Two"))
    reused = await ask(bot, fake, slash("cast", OTHER, BOB, name="Mira"))
    assert reused == (
        "**Mira** is in the cast from this server's library with a reference picture: look "
        "locked, no sheet to draw."
    )
    assert await lock_state(db, OTHER["id"]) is LockState.LOCKED

    token = (export := character("export", OTHER, BOB, name="Mira"))["token"]
    assert "`Mira.storyloom-character`: import it" in await ask(bot, fake, export)
    (post,) = fake.where("POST", f"/webhooks/555/{token}")
    name, data = post.uploads[0]
    assert name == "Mira.storyloom-character"

    gone = await ask(bot, fake, character("delete", OTHER, MOD, name="Mira"))
    assert gone == "Mira is no longer in this server's library."
    file = fake.attachment(name, data, "application/zip")
    imported = await ask(bot, fake, character("import", OTHER, BOB, {"file": file}))
    assert imported == "Imported Mira into this server's library (look locked)."
    junk = fake.attachment("junk.storyloom-character", b"not a zip", "application/zip")
    bad = await ask(bot, fake, character("import", OTHER, BOB, {"file": junk}))
    assert bad.startswith("✗ That file is not a storyloom character file")


async def test_a_long_library_is_listed_in_pages_within_discords_limit(
    bot: Running, fake: FakeDiscord, db: SqlDatabase
) -> None:
    async with db.writing() as uow:
        for number in range(30):
            await library_of(uow).put(LibraryCharacter(
                0, str(GUILD_ID), f"Hero {number}", "a hero " + "x" * 280, "comic", number, (),
                False, None, None, "11", "Ann", utc_now(),
            ))  # fmt: skip
    first = await ask(bot, fake, character("list", THREAD, ANN))
    assert len(first) <= 2000 and "· 30 characters · next: `/character list page:2`" in first
    pages = int(first.rsplit("page 1/", 1)[1].split(" ")[0])
    last = await ask(bot, fake, character("list", THREAD, ANN, page=pages))
    assert f"page {pages}/{pages} · 30 characters" in last and "next" not in last
    listed = first + last
    assert "Hero 0 (comic, look not locked)" in listed

    # autocomplete offers the library's names, at most Discord's 25
    assert len(await suggested(bot, fake, "")) == 25
    assert sorted(await suggested(bot, fake, "hero 1")) == sorted(
        ["Hero 1", *(f"Hero {n}" for n in range(10, 20))]
    )


async def suggested(bot: Running, fake: FakeDiscord, typed: str) -> list[str]:
    """The names `/character show name:` suggests for what was typed."""
    payload = character("show", THREAD, ANN)
    payload["type"] = 4
    payload["data"]["options"][0]["options"] = [
        {"type": 3, "name": "name", "value": typed, "focused": True}
    ]
    bot.send(payload)
    for _ in range(1000):
        for call in fake.where("POST", f"/interactions/{payload['id']}/"):
            if (call.json or {}).get("type") == 8:  # an autocomplete answer
                return [choice["value"] for choice in (call.json or {})["data"]["choices"]]
        await asyncio.sleep(0.02)
    raise AssertionError("no autocomplete answer")
