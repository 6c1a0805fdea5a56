"""Apply the Alembic migrations from inside the running event loop."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from storyloom.storage.engine import WRITE_OPTION, create_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any fixed number: processes starting together on Postgres take turns migrating.
_PG_MIGRATION_LOCK = 0x5707_100B


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code (there is no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _migrate(connection: Connection, revision: str, down: bool) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    step = command.downgrade if down else command.upgrade
    step(alembic_config(connection), revision)


async def _run(url: str, revision: str, down: bool) -> None:
    # On SQLite, BEGIN IMMEDIATE: a second process starting at once waits its turn.
    engine = create_engine(url, execution_options={WRITE_OPTION: True})
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_migrate, revision, down)
    finally:
        await engine.dispose()


async def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (creating it if it is a new SQLite file)."""
    await _run(url, revision, down=False)


async def downgrade_database(url: str, revision: str) -> None:
    """Take the database at `url` back down to `revision` ("base" empties it)."""
    await _run(url, revision, down=True)
