"""Engines and the `Database` the core writes through.

SQLite: WAL, foreign keys, and transactions we begin ourselves, `BEGIN IMMEDIATE` for
writes. Python's sqlite3 otherwise begins lazily at the first write, so two concurrent
read-modify-write transactions both read before either writes and one's update is lost
(or fails with "database is locked" when it tries to upgrade its lock).

Adding beats, the one write members make all the time, goes through `beat_writer` on a
SQLite file: a group commit on a dedicated thread (see there why). Every other write, and
every write on PostgreSQL, is a unit of work of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, update
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from storyloom.storage.beat_writer import BeatWriter
from storyloom.storage.repositories import beat_by_request, beat_value
from storyloom.storage.tables import BeatRow
from storyloom.storage.unit_of_work import SqlUnitOfWork
from storyloom.story.model import Beat
from storyloom.story.ports import AdmitBeat, NewBeat

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


def _beat_writer_engine(engine: AsyncEngine) -> Engine | None:
    """A sync engine on the same SQLite file for the beat writer's thread; None where
    another connection would not see the same database (in-memory) or it is not SQLite."""
    url = engine.url
    if engine.dialect.name != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    writer = create_sync_engine(
        url.set(drivername="sqlite"),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S},
        execution_options={WRITE_OPTION: True},
    )
    event.listen(writer, "connect", _on_sqlite_connect)
    event.listen(writer, "connect", _on_beat_writer_connect)
    event.listen(writer, "begin", _on_sqlite_begin)
    return writer


def _on_beat_writer_connect(dbapi_connection: Any, _record: Any) -> None:
    # A member is told their beat is saved: fsync the log at each commit. Group commit
    # makes that one fsync per batch, not per beat.
    dbapi_connection.execute("PRAGMA synchronous=FULL")


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
        writer_engine = _beat_writer_engine(engine)
        self._beat_writer = BeatWriter(writer_engine, self._write_turn) if writer_engine else None

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

    async def append_beat(self, beat: NewBeat, admit: AdmitBeat) -> Beat:
        """Append a beat: batched with concurrent adds on a SQLite file (see
        `beat_writer`), one transaction of its own elsewhere."""
        if self._beat_writer is not None:
            return await self._beat_writer.append(beat, admit)
        async with self.writing() as uow:
            # The row lock serialises concurrent adds to one story, so positions never repeat.
            found = await uow.stories.get(beat.thread, for_update=True)
            if found is not None and beat.request_key is not None:
                query = beat_by_request(found.id, beat.request_key)
                if (again := (await uow.session.scalars(query)).first()) is not None:
                    return beat_value(again)  # a redelivered request: the beat it added
            cast = await uow.characters.list(found.id) if found else ()
            count = await uow.beats.count(found.id) if found else 0
            story = admit(found, cast, count)
            added = await uow.beats.add(story.id, count + 1, beat.author_id, beat.author_name,
                                        beat.text, beat.created_at)  # fmt: skip
            if beat.request_key is not None:
                await uow.session.execute(
                    update(BeatRow).where(BeatRow.id == added.id)
                    .values(request_key=beat.request_key)
                )  # fmt: skip
            return added

    async def close(self) -> None:
        """Finish pending beats, then close every connection."""
        if self._beat_writer is not None:
            await self._beat_writer.close()
        await self.engine.dispose()


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[SqlDatabase]:
    """A `SqlDatabase` for `url`, disposed on exit (migrations are applied separately)."""
    database = SqlDatabase(create_engine(url))
    try:
        yield database
    finally:
        await database.close()
