"""The character library through the real slack-bolt code over loopback: `/character` in a
channel, `@storyloom cast` with a shared picture, `@storyloom character import` with a
shared file (fetched with the bot token, only when its size fits), and permissions."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from storyloom.bot.library_setup import character_library
from storyloom.bot.slack import run
from storyloom.bot.slack.app import EVENTS_PATH, build_app, web_client
from storyloom.bot.slack.notifier import SlackNotifier
from storyloom.bot.slack.oauth import single_workspace
from storyloom.config import Settings
from storyloom.jobs.admission import positions
from storyloom.jobs.result_files import job_folder
from storyloom.storage import open_database, upgrade_database
from storyloom.story.model import JobKind, JobStatus, LockState
from storyloom.story.service import utc_now

from .conftest import RecordingQueue, fake_web_api, served
from .fake_slack import SECRET, FakeSlack, Sender
from .helpers import command, new_story, said


class Chat:
    def __init__(self, fake: FakeSlack, send: Sender, db: object, out: Path) -> None:
        self.fake, self.send, self.db, self.out = fake, send, db, out


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'stories.db'}"
    await upgrade_database(url)
    settings = Settings(character_dir=tmp_path / "characters", output_dir=tmp_path / "out")
    async with fake_web_api() as fake, open_database(url) as db, aiohttp.ClientSession() as http:
        client = web_client("xoxb-test", base_url=fake.base + "api/")
        lib = character_library(settings, db, detector=lambda: lambda image: [])
        adapter = run.story_adapter(
            db, RecordingQueue(), SlackNotifier(single_workspace(client), db),
            lambda: positions(db, utc_now()), "comic", library=lib,
        )  # fmt: skip
        app = build_app(adapter, client=client, signing_secret=SECRET)
        async with served(app) as base:
            sender = Sender(http, base + EVENTS_PATH, fake.base + "respond/story")
            yield Chat(fake, sender, db, tmp_path / "out")
    assert not fake.refused, fake.refused


def photo() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (180, 60, 60)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


async def character(chat: Chat, text: str, **kw: object) -> str:
    return await command(chat, text, slash="/character", **kw)  # type: ignore[arg-type]


async def draw_and_lock(chat: Chat, thread: str) -> None:
    """Play the worker: Mira's sheet job done, its file where the worker writes it; then
    lock the look through Slack."""
    assert (await said(chat, "look Mira", thread, replies=2)).startswith("character sheet")
    async with chat.db.writing() as uow:  # type: ignore[attr-defined]
        job = next(j for j in await uow.jobs.recent(1, 10) if j.kind is JobKind.SHEET)
        folder = job_folder(chat.out.resolve(), job.id)
        folder.mkdir(parents=True)
        Image.new("RGB", (128, 64), (10, 120, 200)).save(folder / "sheet-mira.png")
        await uow.jobs.set_status(job.id, JobStatus.DONE, utc_now(), files=["sheet-mira.png"])
        await uow.characters.update(job.character_id, utc_now(),
                                    lock_state=LockState.SHEET_RENDERED)  # fmt: skip
    assert await said(chat, "look Mira lock", thread) == "Mira's look is locked"


async def test_the_library_through_slack(chat: Chat, tmp_path: Path) -> None:
    thread = await new_story(chat, "Harbour")
    big = chat.fake.share_file("big.png", b"\0" * (9 * 2**20), "image/png")
    refused = await said(chat, "cast Mira a girl", thread, files=[big])
    assert refused == "✗ The reference picture is 9.0 MiB; the limit is 8 MiB."
    assert not chat.fake.named("download")  # refused by its declared size, not fetched
    picture = chat.fake.share_file("mira.jpg", photo(), "image/jpeg")
    cast = await said(chat, "cast Mira a girl with red hair", thread, files=[picture])
    assert cast == "*Mira* is in the cast with a reference picture"
    (kept,) = (tmp_path / "characters").iterdir()
    assert not Image.open(kept).getexif()
    await draw_and_lock(chat, thread)

    saved = await character(chat, "save Mira")
    assert saved.startswith("Mira is in this server's library (look locked)")
    listed = await character(chat, "list", user="U2")
    assert listed.startswith("Mira (comic, look locked, reference picture): a girl with red hair")
    assert listed.endswith("page 1/1 · 1 characters")
    uploads = len(chat.fake.uploads)
    await character(chat, "show Mira", user="U2")
    assert Image.open(io.BytesIO(chat.fake.uploads[uploads])).format == "PNG"  # the sheet
    denied = await character(chat, "delete Mira", user="U2")
    assert denied == "✗ Mira was saved by U1; only they or a moderator can delete it."
    no_file = await character(chat, "import")
    assert no_file.startswith("✗ Slack commands carry no files")

    other = await new_story(chat, "Tide", user="U2")
    reused = await said(chat, "cast Mira", other, user="U2")
    assert reused == (
        "*Mira* is in the cast from this server's library with a reference picture: look "
        "locked, no sheet to draw."
    )
    assert (await command(chat, "cast Mira", user="U2")).startswith("*Mira* is in the cast from")
    await character(chat, "export Mira")
    exported = chat.fake.uploads[-1]
    assert exported.startswith(b"PK")  # a zip

    chat.fake.admins.add("U3")  # a workspace admin moderates
    assert await character(chat, "delete Mira", user="U3") == (
        "Mira is no longer in this server's library."
    )
    file = chat.fake.share_file("Mira.storyloom-character", exported, "application/zip")
    imported = await said(chat, "character import", other, files=[file])
    assert imported == "Imported Mira into this server's library (look locked)."
    junk = chat.fake.share_file("junk.storyloom-character", b"junk", "application/zip")
    bad = await said(chat, "character import", other, files=[junk])
    assert bad.startswith("✗ That file is not a storyloom character file")
