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


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    command.upgrade(alembic_config(connection), revision)


async def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (creating it if it is a new SQLite file)."""
    # On SQLite, BEGIN IMMEDIATE: a second process starting at once waits its turn.
    engine = create_engine(url, execution_options={WRITE_OPTION: True})
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, revision)
    finally:
        await engine.dispose()
