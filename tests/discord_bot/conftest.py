"""Fixtures: the loopback fake of Discord, a SQLite database, a tiny renderer, a bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest

from storyloom.generation.models import load_pipeline
from storyloom.generation.renderer import RenderSettings, StoryRenderer
from storyloom.storage import SqlDatabase, open_database, upgrade_database

from .fake_discord import FakeDiscord
from .harness import Running, start_bot


@pytest.fixture(scope="session")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> StoryRenderer:
    loaded = load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))
    return StoryRenderer(loaded, RenderSettings(width=64, height=64, steps=2), None)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    original = discord.http.Route.BASE
    discord.http.Route.BASE = f"http://127.0.0.1:{server.port}/api/v10"
    try:
        yield server
    finally:
        discord.http.Route.BASE = original
        await server.stop()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'discord.db'}"
    await upgrade_database(url)
    async with open_database(url) as database:
        yield database


@pytest.fixture
async def running(
    fake: FakeDiscord, db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> AsyncIterator[Running]:
    bot = await start_bot(db, renderer, tmp_path / "out")
    try:
        yield bot
    finally:
        await bot.bot.close()
