"""What the safety tests share: a migrated SQLite file, the tiny renderer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storyloom.generation.models import load_pipeline
from storyloom.generation.renderer import RenderSettings, StoryRenderer
from storyloom.storage import SqlDatabase, open_database, upgrade_database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'safety.db'}"
    await upgrade_database(url)
    async with open_database(url) as database:
        yield database


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> StoryRenderer:
    loaded = load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))
    settings = RenderSettings(width=64, height=64, steps=2)
    return StoryRenderer(loaded, settings, tmp_path_factory.mktemp("stores"))
