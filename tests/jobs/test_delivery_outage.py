"""The outbox's reads during a database outage: logged once as a warning when the outage
begins (and once when it ends), not as an error with a traceback twice a second."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from storyloom.jobs.courier import CallbackCourier
from storyloom.jobs.delivery import Delivery
from storyloom.jobs.events import JobEvent


class _Down:
    """A database that is down for the first `reads` reads, then up with nothing owed."""

    def __init__(self, reads: int) -> None:
        self.reads, self.tried = reads, 0

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Any]:
        self.tried += 1
        if self.tried <= self.reads:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
        yield _Nothing()


class _Nothing:
    session = None


async def test_an_outage_is_logged_once_not_at_every_read(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def none_due(session: object, now: object) -> list[object]:
        return []

    monkeypatch.setattr("storyloom.jobs.delivery.sql.due", none_due)
    monkeypatch.setattr("storyloom.jobs.delivery.session_of", lambda uow: None)

    async def nobody(event: JobEvent) -> None:
        raise AssertionError("nothing is owed")

    db = _Down(reads=8)
    delivery = Delivery(db, CallbackCourier(nobody), tmp_path, every_s=0.01)  # type: ignore[arg-type]
    caplog.set_level(logging.INFO, logger="storyloom.jobs.delivery")
    running = asyncio.create_task(delivery.run())
    async with asyncio.timeout(30):
        while db.tried < 12:
            await asyncio.sleep(0.01)
    running.cancel()
    await asyncio.wait([running])
    records = [r for r in caplog.records if r.name == "storyloom.jobs.delivery"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.INFO]
    assert "database is unavailable" in records[0].getMessage()
    assert records[1].getMessage() == "reading owed messages again after 8 failed reads"
