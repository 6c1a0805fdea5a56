"""Fixtures: the loopback fake of Discord, a SQLite database, tiny renderers, a bot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import discord
import pytest

from storyloom.generation.models import LoadedModel, load_pipeline
from storyloom.generation.renderer import RenderSettings, StoryRenderer
from storyloom.storage import SqlDatabase, open_database, upgrade_database

from .fake_discord import FakeDiscord
from .harness import Running, started


@pytest.fixture(scope="session")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def renderer(loaded: LoadedModel) -> StoryRenderer:
    return StoryRenderer(loaded, RenderSettings(width=64, height=64, steps=2), None)


@pytest.fixture
def slow_renderer(loaded: LoadedModel) -> Callable[[], StoryRenderer]:
    """A renderer loader whose renders take long enough to stop a bot in the middle."""
    return lambda: StoryRenderer(loaded, RenderSettings(width=64, height=64, steps=400), None)


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
    # nothing the bot sent was over Discord's limits (a refusal shows the member nothing)
    assert not server.refusals(), server.refusals()


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
    async with started(db, lambda: renderer, tmp_path / "out") as bot:
        yield bot
