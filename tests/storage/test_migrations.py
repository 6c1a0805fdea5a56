"""Migrations build exactly the models' schema, go down and up again, and run from the CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from typer.testing import CliRunner

from storyloom.app.db_commands import db_app
from storyloom.bot.slack.oauth import oauth_tables
from storyloom.storage import create_engine, upgrade_database
from storyloom.storage.migrate import downgrade_database
from storyloom.storage.tables import Base


async def _inspect(url: str, fn):  # type: ignore[no-untyped-def]
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(fn)
    finally:
        await engine.dispose()


def _differences(connection: Connection) -> list[object]:
    # our models, and slack_sdk's own definitions of the OAuth store tables (migration
    # 0005): a table in neither, or a column that differs from either, is a difference
    expected = [Base.metadata, oauth_tables()]
    return list(compare_metadata(MigrationContext.configure(connection), expected))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrations_match_the_models(database_url: str) -> None:
    await upgrade_database(database_url)
    assert await _inspect(database_url, _differences) == []


async def test_upgrade_is_idempotent_and_reversible(database_url: str) -> None:
    await upgrade_database(database_url)
    await upgrade_database(database_url)
    await downgrade_database(database_url, "base")
    assert await _inspect(database_url, _tables) == {"alembic_version"}
    await upgrade_database(database_url)
    assert {"stories", "beats", "characters", "render_jobs"} <= await _inspect(
        database_url, _tables
    )


async def test_processes_starting_together_migrate_once(database_url: str) -> None:
    await asyncio.gather(*(upgrade_database(database_url) for _ in range(3)))
    assert await _inspect(database_url, _differences) == []


def test_db_upgrade_command_creates_the_database(tmp_path: Path) -> None:
    path = tmp_path / "new" / "stories.db"
    result = CliRunner().invoke(db_app, ["upgrade", "--url", f"sqlite+aiosqlite:///{path}"])
    assert result.exit_code == 0, result.output
    assert "stories.db" in result.output
    tables = asyncio.run(_inspect(f"sqlite+aiosqlite:///{path}", _tables))
    assert "beats" in tables
