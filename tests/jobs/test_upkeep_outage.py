"""Upkeep during a database outage: said once when it begins and once when it ends (the
chaos benchmark's 20 s outage printed four 120-line tracebacks), a real error still with its
traceback; and in embedded mode the start's round, which sends every waiting job, is
repeated until it reached the database."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from storyloom.jobs import runtime as runtime_module

DOWN = OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))


async def run_rounds(runtime: Any, rounds: int, calls: list[Any]) -> None:
    """Run the upkeep loop until `rounds` re-send rounds were tried."""
    task = asyncio.create_task(runtime_module._upkeep(runtime, 0.001, 60.0, 60.0))
    async with asyncio.timeout(30):
        while len(calls) < rounds:
            await asyncio.sleep(0.001)
    task.cancel()
    await asyncio.wait([task])


def failing(calls: list[Any], error: Exception, times: int) -> Any:
    async def requeue(db: Any, queue: Any, queued_for: Any, heartbeat_lost_for: Any) -> list[int]:
        calls.append(queued_for)
        if len(calls) <= times:
            raise error
        return []

    return requeue


async def test_an_outage_is_logged_once_when_it_begins_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    forgets: list[int] = []

    async def forget(db: Any) -> int:
        forgets.append(1)
        if len(forgets) <= 5:
            raise DOWN
        return 0

    monkeypatch.setattr(runtime_module, "forget_posted_files", forget)
    monkeypatch.setattr(runtime_module, "requeue_stale", failing(calls, DOWN, 5))
    caplog.set_level(logging.INFO, logger=runtime_module.__name__)
    runtime = SimpleNamespace(local_broker=None, db=object(), queue=object())
    await run_rounds(runtime, 9, calls)
    records = [r for r in caplog.records if r.name == runtime_module.__name__]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, f"upkeep: the database is unavailable ({DOWN})"),
        (logging.INFO, "upkeep again after 5 rounds without the database"),
    ]
    assert all(r.exc_info is None for r in records)


async def test_a_real_error_is_still_logged_with_its_traceback_every_round(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []

    async def forget(db: Any) -> int:
        return 0

    monkeypatch.setattr(runtime_module, "forget_posted_files", forget)
    monkeypatch.setattr(runtime_module, "requeue_stale", failing(calls, ValueError("bad"), 3))
    caplog.set_level(logging.INFO, logger=runtime_module.__name__)
    runtime = SimpleNamespace(local_broker=None, db=object(), queue=object())
    await run_rounds(runtime, 5, calls)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert all(r.exc_info is not None for r in errors)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


async def test_embedded_mode_sends_every_waiting_job_once_the_database_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Embedded: the last process's messages died with it, so the first round sends every
    waiting job; when that round cannot reach the database, the next one tries again."""
    calls: list[Any] = []

    async def forget(db: Any) -> int:
        raise AssertionError("embedded mode forgets files as it delivers them")

    monkeypatch.setattr(runtime_module, "forget_posted_files", forget)
    monkeypatch.setattr(runtime_module, "requeue_stale", failing(calls, DOWN, 2))
    runtime = SimpleNamespace(local_broker=object(), db=object(), queue=object())
    await run_rounds(runtime, 5, calls)
    assert calls[:5] == [timedelta(0)] * 3 + [None] * 2
