"""What the storage tests share besides the databases (tests/conftest.py)."""

from __future__ import annotations

import pytest

from storyloom.storage import SqlDatabase
from storyloom.story.service import Deps

STYLES = frozenset({"comic", "manga"})


class RecordingQueue:
    def __init__(self) -> None:
        self.submitted: list[int] = []

    async def submit(self, job_id: int) -> None:
        self.submitted.append(job_id)


@pytest.fixture
def deps(db: SqlDatabase) -> Deps:
    return Deps(db, RecordingQueue(), STYLES, "comic")
