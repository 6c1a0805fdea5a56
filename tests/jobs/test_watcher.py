"""The watcher alone, on a real database: it stops when told, whatever it was doing, and a
row it does not understand fails alone instead of stopping every poll."""

from __future__ import annotations

import asyncio
from pathlib import Path

from storyloom.jobs.courier import as_courier
from storyloom.jobs.delivery import Delivery
from storyloom.jobs.events import JobEvent
from storyloom.jobs.watcher import JobWatcher
from storyloom.storage import SqlDatabase


async def no_places() -> dict[int, int]:
    return {}


async def test_a_stop_that_meets_a_poke_still_stops_the_watcher(
    db: SqlDatabase, tmp_path: Path
) -> None:
    seen: list[JobEvent] = []

    async def notify(event: JobEvent) -> None:
        seen.append(event)

    watcher = JobWatcher(db, Delivery(db, as_courier(notify), tmp_path), no_places, every_s=60)
    for yields in range(4):
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(0.2)  # it has polled once and waits for the next tick
        watcher.poke()  # a worker changed a row ...
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()  # ... just as the process stops
        done, _ = await asyncio.wait([task], timeout=10)
        assert done == {task}, f"the watcher ignored its stop ({yields} yields)"
        assert task.cancelled()
