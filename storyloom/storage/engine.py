"""Engines and the `Database` the core writes through.

SQLite: WAL, foreign keys, and transactions we begin ourselves, `BEGIN IMMEDIATE` for
writes. Python's sqlite3 otherwise begins lazily at the first write, so two concurrent
read-modify-write transactions both read before either writes and one's update is lost
(or fails with "database is locked" when it tries to upgrade its lock).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from storyloom.storage.unit_of_work import SqlUnitOfWork

WRITE_OPTION = "storyloom_write"
# Another process may hold the write lock (a worker, a second bot); wait, don't fail.
SQLITE_BUSY_TIMEOUT_S = 30


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine for `url`, with the SQLite settings above when it is SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_pre_ping=True, **options)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, **options)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Stop the driver from issuing its own (deferred, lazy) BEGIN: `_on_sqlite_begin` does.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front, so the transaction never has to upgrade.
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class SqlDatabase:
    """The core's `Database` over one engine: read and write units of work."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._read_sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(
            engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )
        # SQLite has one writer at a time: queue writers here, in order, rather than
        # letting them poll the file lock with sleeps (which is what busy_timeout does).
        self._write_turn = asyncio.Lock()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[SqlUnitOfWork]:
        """A unit of work for reads; it never commits."""
        async with self._read_sessions() as session, session.begin():
            yield SqlUnitOfWork(session, lock_rows=False)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[SqlUnitOfWork]:
        """A write transaction: committed if the block succeeds, rolled back otherwise."""
        async with AsyncExitStack() as stack:
            if self._sqlite:
                await stack.enter_async_context(self._write_turn)
            session = await stack.enter_async_context(self._write_sessions())
            await stack.enter_async_context(session.begin())
            yield SqlUnitOfWork(session, lock_rows=not self._sqlite)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[SqlDatabase]:
    """A `SqlDatabase` for `url`, disposed on exit (migrations are applied separately)."""
    database = SqlDatabase(create_engine(url))
    try:
        yield database
    finally:
        await database.close()
