"""Adds that arrive together: on a SQLite file they share one transaction (group commit),
yet each caller gets its own position, its own error, and only beats that were committed.

A batch is made deterministic by holding the database's write turn (an open write
transaction) while the adds queue up behind it; releasing it lets them all go at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError

from storyloom.storage import SqlDatabase
from storyloom.story import service
from storyloom.story.errors import LimitExceeded, NotFound, UnknownCharacter
from storyloom.story.limits import MAX_BEATS
from storyloom.story.model import Actor, Beat
from storyloom.story.service import Deps

OWNER = Actor("w1", "c1", "t1", "owner", "Owner")


def member(i: int, thread: str = "t1") -> Actor:
    return Actor("w1", "c1", thread, f"m{i}", f"Member {i}")


async def _together(db: SqlDatabase, calls: list[Awaitable[Beat]]) -> list[Beat | BaseException]:
    """Run `calls` so that they all wait for the write turn at once, then release it."""
    async with db.writing():
        tasks = [asyncio.ensure_future(call) for call in calls]
        for _ in range(5):  # let every add reach the writer's queue
            await asyncio.sleep(0)
    return await asyncio.gather(*tasks, return_exceptions=True)


@contextmanager
def _commits(db: SqlDatabase) -> Iterator[list[int]]:
    """Counts commits on every engine but the async one (i.e. the beat writer's)."""
    seen: list[int] = []

    def on_commit(connection: object) -> None:
        if getattr(connection, "engine", None) is not db.engine.sync_engine:
            seen.append(1)

    event.listen(Engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(Engine, "commit", on_commit)


def _stored(database_url: str) -> list[tuple[int, int, str]]:
    """(id, position, text) of thread t1's beats, read by a separate plain connection."""
    path = database_url.split(":///", 1)[1]
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT b.id, b.position, b.text FROM beats b JOIN stories s ON s.id = b.story_id "
            "WHERE s.thread_id = 't1' ORDER BY b.position"
        ).fetchall()
    connection.close()
    return [tuple(row) for row in rows]


@pytest.fixture
def sqlite_url(database_url: str) -> str:
    return database_url


# Group commit is SQLite's (PostgreSQL adds lock the story row): these run on SQLite only.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _story_with_cast(deps: Deps) -> None:
    await service.new_story(deps, OWNER, "Batch")
    await service.cast_character(deps, OWNER, "Mira", "a girl in a raincoat")


@sqlite_only
async def test_adds_in_one_batch_each_get_their_own_committed_position(
    deps: Deps, db: SqlDatabase, sqlite_url: str
) -> None:
    await _story_with_cast(deps)
    with _commits(db) as commits:
        results = await _together(
            db, [service.add_beat(deps, member(i), f"[Mira] beat {i}") for i in range(30)]
        )
    assert len(commits) == 1  # one transaction for all thirty
    beats = [r for r in results if isinstance(r, Beat)]
    assert len(beats) == 30
    assert sorted(b.position for b in beats) == list(range(1, 31))
    # What each caller was told is exactly what a separate connection reads from the file.
    assert sorted((b.id, b.position, b.text) for b in beats) == _stored(sqlite_url)


async def test_an_invalid_add_in_a_batch_gets_its_own_error_and_the_others_land(
    deps: Deps, db: SqlDatabase
) -> None:
    await _story_with_cast(deps)
    adds = [(member(i), f"[Mira] beat {i}") for i in range(10)]
    adds[3] = (member(3), "[Ghost] boo")
    adds[7] = (member(7, thread="no-story-here"), "lost soul")
    results = await _together(db, [service.add_beat(deps, who, said) for who, said in adds])

    assert isinstance(results[3], UnknownCharacter) and "Mira" in results[3].message
    assert isinstance(results[7], NotFound)
    landed = [r for r in results if isinstance(r, Beat)]
    assert len(landed) == 8
    # No gap where the refused ones would have gone.
    assert sorted(b.position for b in landed) == list(range(1, 9))
    stored = await service.export(deps, OWNER)
    assert sorted(b.text for b in stored.beats) == sorted(b.text for b in landed)


async def test_a_batch_fills_the_story_up_to_the_limit_and_refuses_the_rest(
    deps: Deps, db: SqlDatabase
) -> None:
    await _story_with_cast(deps)
    await asyncio.gather(*(service.add_beat(deps, member(i), "x") for i in range(MAX_BEATS - 2)))
    results = await _together(
        db, [service.add_beat(deps, member(i), f"late {i}") for i in range(5)]
    )
    refused = [r for r in results if isinstance(r, LimitExceeded)]
    assert len(refused) == 3
    assert sorted(r.position for r in results if isinstance(r, Beat)) == [MAX_BEATS - 1, MAX_BEATS]


@sqlite_only
async def test_a_statement_failing_mid_batch_fails_only_its_own_add(
    deps: Deps, db: SqlDatabase, sqlite_url: str
) -> None:
    await _story_with_cast(deps)
    async with db.reading() as uow:  # a real database error, raised by SQLite itself
        await uow.session.execute(  # type: ignore[attr-defined]
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON beats WHEN NEW.text = 'refuse me' "
                "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
            )
        )
        await uow.session.commit()  # type: ignore[attr-defined]
    texts = [f"beat {i}" for i in range(6)]
    texts[2] = "refuse me"
    with _commits(db) as commits:
        results = await _together(db, [service.add_beat(deps, member(0), t) for t in texts])

    assert isinstance(results[2], DBAPIError) and "refused by trigger" in str(results[2])
    landed = [r for r in results if isinstance(r, Beat)]
    assert sorted(b.position for b in landed) == list(range(1, 6))
    assert sorted((b.id, b.position, b.text) for b in landed) == _stored(sqlite_url)
    assert len(commits) == 1  # the batch went on without the failed statement


@sqlite_only
async def test_a_rollback_mid_batch_loses_nothing_reported_as_added(
    deps: Deps, db: SqlDatabase, sqlite_url: str
) -> None:
    await _story_with_cast(deps)
    async with db.reading() as uow:
        # RAISE(ROLLBACK) ends the whole transaction: the batch's earlier inserts go too.
        await uow.session.execute(  # type: ignore[attr-defined]
            text(
                "CREATE TRIGGER undo_all BEFORE INSERT ON beats WHEN NEW.text = 'roll back' "
                "BEGIN SELECT RAISE(ROLLBACK, 'rolled back by trigger'); END"
            )
        )
        await uow.session.commit()  # type: ignore[attr-defined]
    texts = [f"beat {i}" for i in range(8)]
    texts[4] = "roll back"
    with _commits(db) as commits:
        results = await _together(db, [service.add_beat(deps, member(0), t) for t in texts])

    assert isinstance(results[4], DBAPIError) and "rolled back by trigger" in str(results[4])
    landed = [r for r in results if isinstance(r, Beat)]
    # The ones written before the rollback were written again; every reported beat is stored,
    # at the position it was reported at.
    assert len(landed) == 7
    assert sorted((b.id, b.position, b.text) for b in landed) == _stored(sqlite_url)
    assert [p for _, p, _ in _stored(sqlite_url)] == list(range(1, 8))
    assert len(commits) == 1  # the lost transaction never committed; the retry did


@sqlite_only
async def test_closing_the_database_waits_for_adds_under_way(
    deps: Deps, db: SqlDatabase, sqlite_url: str, tmp_path: Path
) -> None:
    await _story_with_cast(deps)
    adds = [asyncio.ensure_future(service.add_beat(deps, member(i), f"b{i}")) for i in range(20)]
    await asyncio.sleep(0)
    await db.close()
    beats = await asyncio.gather(*adds)
    assert sorted((b.id, b.position, b.text) for b in beats) == _stored(sqlite_url)
