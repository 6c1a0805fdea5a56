from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from storyloom.story.model import Actor
from storyloom.story.service import Deps

from .fakes import FakeDatabase, FakeQueue

STYLES = frozenset({"comic", "manga", "watercolor"})


def member(name: str, thread: str = "t1", *, moderator: bool = False, channel: str = "c1",
           workspace: str = "w1") -> Actor:  # fmt: skip
    """An actor in a thread; ids follow the display name so tests read naturally."""
    return Actor(workspace, channel, thread, f"id-{name}", name, moderator)


@pytest.fixture
def database() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def queue(database: FakeDatabase) -> FakeQueue:
    return FakeQueue(database)


@pytest.fixture
def deps(database: FakeDatabase, queue: FakeQueue) -> Deps:
    ticks = itertools.count()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    seeds = itertools.count(1000)
    return Deps(
        database, queue, STYLES, "comic",
        clock=lambda: start + timedelta(seconds=next(ticks)),
        new_seed=lambda: next(seeds),
    )  # fmt: skip
