"""A finished, shared story in a real SQLite file, and the operations server (bot side)
serving its reader on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storyloom.config import Settings, load_settings
from storyloom.ops.server import ops_server
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.storage.share_links import share_links
from storyloom.story import service, sharing
from storyloom.story.model import Actor
from storyloom.story.service import Deps
from storyloom.testing.devservices import free_port
from tests.reader.stories import (
    EVIL_AUTHOR,
    EVIL_BEAT,
    EVIL_DESCRIPTION,
    EVIL_NAME,
    EVIL_TITLE,
    NoQueue,
    render_pages,
    render_sheet,
)

OWNER = Actor("guild", "chan", "thread-1", "ann", "Ann")
WRITER = Actor("guild", "chan", "thread-1", "zed", EVIL_AUTHOR)
MODERATOR = Actor("guild", "chan", "thread-2", "mod", "Mo", is_moderator=True)
BASE_URL = "https://comics.example.org/"


@dataclass
class Shared:
    """A story with rendered pages and a cast sheet, one live share link, and the server."""

    db: SqlDatabase
    deps: Deps
    settings: Settings
    out_dir: Path
    link: sharing.NewLink

    @property
    def token(self) -> str:
        return self.link.url.rsplit("/", 1)[1]

    def local(self, path: str) -> str:
        """`path` on the running server."""
        return f"http://127.0.0.1:{self.settings.ops_port}{path}"

    @property
    def reader_url(self) -> str:
        return self.local(f"/s/{self.token}")


async def make_story(deps: Deps, out_dir: Path, beats: int = 4) -> None:
    """The story of OWNER's thread: an evil title, cast and beats; pages and a sheet."""
    await service.new_story(deps, OWNER, EVIL_TITLE)
    await service.cast_character(deps, OWNER, EVIL_NAME, EVIL_DESCRIPTION)
    await service.add_beat(deps, WRITER, EVIL_BEAT)
    for n in range(2, beats + 1):
        await service.add_beat(
            deps, OWNER, f"[Mira] walks to the lighthouse, step {n} # Night {n}."
        )
    await render_sheet(deps, OWNER, EVIL_NAME, out_dir)
    await render_pages(deps, OWNER, out_dir)


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[Shared]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'reader.db'}"
    out_dir = tmp_path / "out"
    await upgrade_database(url)
    settings = load_settings(
        database_url=url,
        ops_port=free_port(),
        output_dir=out_dir,
        public_base_url=BASE_URL,
        reader_burst=1000,
    )
    async with open_database(url) as db:
        deps = Deps(db, NoQueue(), frozenset({"comic"}), "comic")
        await make_story(deps, out_dir)
        link = await sharing.share(deps, share_links, OWNER, settings.public_base_url)
        async with ops_server(settings, "discord"):
            yield Shared(db, deps, settings, out_dir, link)
