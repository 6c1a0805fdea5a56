"""The service over real databases (SQLite file and PostgreSQL), same code on both."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.storage.tables import BeatRow, CharacterRow, RenderJobRow, StoryRow
from storyloom.story import service
from storyloom.story.errors import Conflict, Forbidden, NotFound, StoryError
from storyloom.story.model import Actor, JobKind, JobStatus, LockState
from storyloom.story.service import Deps

ANN = Actor("w1", "c1", "t1", "ann", "Ann")
BOB = Actor("w1", "c1", "t1", "bob", "Bob")


async def _counts(db: SqlDatabase) -> dict[str, int]:
    async with db.reading() as uow:
        session = uow.session  # type: ignore[attr-defined]
        return {
            table.__tablename__: (
                await session.execute(select(func.count()).select_from(table))
            ).scalar_one()
            for table in (StoryRow, BeatRow, CharacterRow, RenderJobRow)
        }


async def _texts(deps: Deps, actor: Actor = ANN) -> list[tuple[int, str]]:
    export = await service.export(deps, actor)
    return [(b.position, b.text) for b in export.beats]


async def test_every_use_case_persists(deps: Deps, database_url: str) -> None:
    await service.new_story(deps, ANN, "The Lighthouse")
    mira = await service.cast_character(deps, ANN, "Mira", "a girl in a raincoat")
    for beat in ("[Mira] one", 'two # Mira: "hi"', "three", "four"):
        await service.add_beat(deps, BOB, beat)
    await service.edit_beat(deps, BOB, 2, "TWO")
    await service.move_beat(deps, BOB, 1, 4)
    await service.remove_beat(deps, ANN, 3)
    await service.add_beat(deps, BOB, "five")
    await service.undo_beat(deps, BOB)
    look = await service.lock_look(deps, BOB, "mira")
    reroll = await service.reroll_look(deps, ANN, "Mira")
    page_job = await service.render(deps, BOB, 1, 2)
    await service.clip(deps, BOB)
    await service.set_style(deps, ANN, "manga")
    await service.cancel(deps, BOB, page_job.id)

    # A second connection pool sees exactly what was committed.
    async with open_database(database_url) as fresh:
        other = Deps(fresh, deps.queue, deps.styles, deps.default_style)
        assert await _texts(other) == [(1, "TWO"), (2, "three"), (3, "[Mira] one")]
        overview = await service.status(other, ANN)
    assert overview.story.style == "manga" and overview.beat_count == 3
    assert overview.characters[0].seed == reroll.character.seed != mira.seed
    assert overview.characters[0].lock_state is LockState.DRAFT
    assert [(j.kind, j.status) for j in overview.jobs] == [
        (JobKind.CLIP, JobStatus.QUEUED),
        (JobKind.PAGE, JobStatus.CANCELLED),
        (JobKind.REROLL, JobStatus.QUEUED),
        (JobKind.SHEET, JobStatus.QUEUED),
    ]
    assert look.job is not None and deps.queue.submitted[0] == look.job.id  # type: ignore[attr-defined]
    assert overview.story.created_at.tzinfo is not None

    await service.delete_story(deps, ANN)
    assert await _counts(deps.db) == {"stories": 0, "beats": 0, "characters": 0,  # type: ignore[arg-type]
                                      "render_jobs": 0}  # fmt: skip


async def test_threads_channels_and_workspaces_are_isolated(deps: Deps) -> None:
    neighbours = [
        Actor("w1", "c1", "t2", "ann", "Ann"),
        Actor("w1", "c2", "t1", "ann", "Ann"),
        Actor("w2", "c1", "t1", "ann", "Ann", is_moderator=True),
    ]
    await service.new_story(deps, ANN, "Home")
    await service.add_beat(deps, ANN, "home beat")
    job = await service.render(deps, ANN)
    for actor in neighbours:
        with pytest.raises(NotFound):
            await service.list_beats(deps, actor)
        await service.new_story(deps, actor, f"Story of {actor.thread}")
        await service.add_beat(deps, actor, f"beat in {actor.thread}")
        with pytest.raises(NotFound):
            await service.cancel(deps, actor, job.id)
        with pytest.raises(NotFound):
            await service.edit_beat(deps, actor, 2, "reach across")
    assert await _texts(deps) == [(1, "home beat")]
    for actor in neighbours:
        assert await _texts(deps, actor) == [(1, f"beat in {actor.thread}")]


async def test_failed_calls_change_nothing(deps: Deps) -> None:
    await service.new_story(deps, ANN, "T")
    await service.add_beat(deps, ANN, "kept")
    before = await _counts(deps.db)  # type: ignore[arg-type]
    for call in (
        service.add_beat(deps, BOB, "x" * 501),
        service.add_beat(deps, BOB, "[Ghost] boo"),
        service.add_beat(deps, BOB, "nul\x00"),
        service.edit_beat(deps, BOB, 1, "not yours"),
        service.cast_character(deps, BOB, "Bad_Name", "x"),
        service.new_story(deps, BOB, "again"),
        service.delete_story(deps, BOB),
        service.render(deps, BOB, 2, 5),
    ):
        with pytest.raises(StoryError):
            await call
    assert await _counts(deps.db) == before  # type: ignore[arg-type]
    assert await _texts(deps) == [(1, "kept")]


async def test_an_error_inside_a_write_rolls_everything_back(deps: Deps) -> None:
    story = await service.new_story(deps, ANN, "T")
    with pytest.raises(RuntimeError):
        async with deps.db.writing() as uow:
            await uow.beats.add(story.id, 1, "ann", "Ann", "half-done", story.created_at)
            raise RuntimeError("network failed mid-way")
    assert await _texts(deps) == []


async def test_the_database_refuses_duplicate_positions(deps: Deps) -> None:
    story = await service.new_story(deps, ANN, "T")
    with pytest.raises(IntegrityError):
        async with deps.db.writing() as uow:
            await uow.beats.add(story.id, 1, "ann", "Ann", "a", story.created_at)
            await uow.beats.add(story.id, 1, "bob", "Bob", "b", story.created_at)


async def test_fifty_concurrent_adds_keep_every_beat_once(deps: Deps) -> None:
    await service.new_story(deps, ANN, "Busy")
    members = [Actor("w1", "c1", "t1", f"m{i}", f"Member {i}") for i in range(50)]
    added = await asyncio.gather(
        *(service.add_beat(deps, m, f"beat from {m.member_id}") for m in members)
    )
    assert sorted(b.position for b in added) == list(range(1, 51))
    stored = await _texts(deps)
    assert [p for p, _ in stored] == list(range(1, 51))
    assert sorted(t for _, t in stored) == sorted(f"beat from {m.member_id}" for m in members)


async def test_one_request_adds_one_beat_however_often_it_arrives(deps: Deps) -> None:
    await service.new_story(deps, ANN, "Busy")
    again = await asyncio.gather(  # a redelivered event, at once and after
        *(service.add_beat(deps, ANN, "the fog lifts", request_key="Ev1") for _ in range(3))
    )
    later = await service.add_beat(deps, ANN, "the fog lifts", request_key="Ev1")
    other = await service.add_beat(deps, ANN, "the fog lifts", request_key="Ev2")
    assert {b.id for b in again} == {later.id} and later.position == 1
    assert other.position == 2  # another request with the same text is a beat of its own
    assert await _texts(deps) == [(1, "the fog lifts"), (2, "the fog lifts")]


async def test_concurrent_adds_from_two_processes_worth_of_pools(
    deps: Deps, database_url: str
) -> None:
    # Two independent pools (as a bot and a worker process would have): the in-process
    # write queue does not help here, only the database's own locking does.
    await service.new_story(deps, ANN, "Shared")
    async with open_database(database_url) as second:
        other = Deps(second, deps.queue, deps.styles, deps.default_style)
        calls = [
            service.add_beat(deps if i % 2 else other, Actor("w1", "c1", "t1", f"m{i}", "M"),
                             f"b{i}")
            for i in range(50)
        ]  # fmt: skip
        await asyncio.gather(*calls)
    stored = await _texts(deps)
    assert [p for p, _ in stored] == list(range(1, 51))
    assert sorted(t for _, t in stored) == sorted(f"b{i}" for i in range(50))


async def test_concurrent_new_story_in_one_thread_makes_one_story(deps: Deps) -> None:
    results = await asyncio.gather(
        *(service.new_story(deps, ANN, f"T{i}") for i in range(10)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))


async def test_permissions_hold_on_the_real_database(deps: Deps) -> None:
    await service.new_story(deps, ANN, "T")
    await service.add_beat(deps, BOB, "bob's")
    with pytest.raises(Forbidden):
        await service.remove_beat(deps, Actor("w1", "c1", "t1", "carl", "Carl"), 1)
    await service.remove_beat(deps, Actor("w1", "c1", "t1", "mod", "Mod", is_moderator=True), 1)
    assert await _texts(deps) == []


async def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}"
    await upgrade_database(url)
    async with open_database(url) as db, db.reading() as uow:
        session = uow.session  # type: ignore[attr-defined]
        assert (await session.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        assert (await session.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
