"""Caps hold under concurrency, on SQLite and PostgreSQL: requests of one member across
several stories, and of many members of one workspace, sent at once through several
connection pools (as from several bot processes), never get more jobs admitted than the
caps allow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from storyloom.jobs.admission import JobAdmission
from storyloom.jobs.fairness import JobLimits
from storyloom.storage import SqlDatabase, open_database
from storyloom.story import service
from storyloom.story.errors import LimitExceeded
from storyloom.story.model import Actor
from storyloom.story.service import Deps
from tests.story.fakes import SentIds

LIMITS = JobLimits(per_member=5, per_workspace=10)
STYLES = frozenset({"comic"})


@pytest.fixture
async def pools(db: SqlDatabase, database_url: str) -> AsyncIterator[list[Deps]]:
    """Three processes' worth of connections to one database, each with the caps."""
    async with open_database(database_url) as second, open_database(database_url) as third:
        yield [
            Deps(each, SentIds(), STYLES, "comic", admit_job=JobAdmission(LIMITS))
            for each in (db, second, third)
        ]


async def stories(deps: Deps, actors: list[Actor]) -> None:
    for actor in actors:
        await service.new_story(deps, actor, "A story")
        await service.add_beat(deps, actor, "a beach at dawn")


async def admitted(pools: list[Deps], actors: list[Actor]) -> int:
    async def ask(i: int, actor: Actor) -> bool:
        try:
            await service.render(pools[i % len(pools)], actor)
        except LimitExceeded:
            return False
        return True

    return sum(await asyncio.gather(*(ask(i, a) for i, a in enumerate(actors))))


async def test_one_member_asking_in_twelve_stories_at_once_gets_the_member_cap(
    pools: list[Deps],
) -> None:
    ann = [Actor("w", "c", f"t{i}", "ann", "Ann") for i in range(12)]  # a story per thread
    await stories(pools[0], ann)
    assert await admitted(pools, ann) == LIMITS.per_member


async def test_twelve_members_of_one_workspace_at_once_get_the_workspace_cap(
    pools: list[Deps],
) -> None:
    members = [Actor("w", "c", f"t{i}", f"m{i}", f"M{i}") for i in range(12)]
    await stories(pools[0], members)
    assert await admitted(pools, members) == LIMITS.per_workspace
