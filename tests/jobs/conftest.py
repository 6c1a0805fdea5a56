"""What the job tests share: a migrated SQLite file of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storyloom.storage import SqlDatabase, open_database, upgrade_database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"
    await upgrade_database(url)
    async with open_database(url) as database:
        yield database
