"""The distributed mode under crashes and outages, as an operator runs it.

    python benchmarks/chaos.py --json chaos.json

It starts everything itself, on loopback and free ports: a PostgreSQL 15 cluster, a
`redis-server` with an append-only file, two `storyloom worker` processes (tiny offline
model, 64 px) with the production timings (heartbeat 10 s, take-over after 60 s, Redis
redelivery after 30 min) and a bot side (`job_runtime`, queue = redis, default upkeep).
One notifier records every event the bot side tells, across a bot restart. Scenarios:

- takeover_with_backlog_s: kill -9 the worker running a job while 10 more wait; seconds
  from the kill until the job runs again on the other worker. Target <= 120.
- wait_after_lost_message_s: both workers busy, a job is asked for, then Redis is killed
  and restarted without its data (the job's message with it); seconds from the restart
  until the job runs. Target <= 60.
- renders_lost_to_db_outage: PostgreSQL stopped for 20 s while two jobs render and one
  waits; how many of them then fail or have to be rendered again. Target 0.
- cap_violations: 12 requests at once from one member (cap 5) in 12 stories, and from 12
  members of one workspace (cap 10), through three connection pools; jobs admitted over
  the caps. Target 0.
- lost_reports, duplicate_reports, stuck_jobs: over the whole run, ended jobs the bot side
  never reported, reported more than once, and jobs not ended at the end. Targets 0.

The run is bounded: each wait has a deadline, and a scenario that misses one is reported
with the figure it reached (`null` for one that never happened), not retried.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from report import machine, write_json

from storyloom.config import load_settings
from storyloom.generation.models import load_pipeline
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import JobAdmission
from storyloom.jobs.broker import BrokerOptions
from storyloom.jobs.events import JobEvent
from storyloom.jobs.fairness import JobLimits
from storyloom.jobs.runtime import job_runtime
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.story import service
from storyloom.story.errors import LimitExceeded
from storyloom.story.model import Actor, JobStatus, RenderJob
from storyloom.story.service import Deps
from storyloom.testing.devservices import PostgresServer, RedisServer, WorkerProcess, tiny_settings

STEPS = 6
SHORT = Actor("w", "c", "short", "ann", "Ann")  # a 2-panel story: a render of a few seconds
LONG = Actor("w", "c", "long", "bob", "Bob")  # 8 panels: keeps a worker busy for a while
BACKLOG = 10
OUTAGE_S = 20.0
FINAL = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)
TARGETS = {
    "lost_reports": 0,
    "duplicate_reports": 0,
    "stuck_jobs": 0,
    "cap_violations": 0,
    "takeover_with_backlog_s": 120,
    "wait_after_lost_message_s": 60,
    "renders_lost_to_db_outage": 0,
}


class Reports:
    """The bot side's notifier: how many times each job's outcome was told."""

    def __init__(self) -> None:
        self.finals: Counter[int] = Counter()

    async def __call__(self, event: JobEvent) -> None:
        if event.status in FINAL:
            self.finals[event.job.id] += 1


async def rows(db: SqlDatabase, ids: list[int]) -> list[RenderJob]:
    """The jobs as their rows say now (an outage reads as no rows)."""
    try:
        async with db.reading() as uow:
            return [job for i in ids if (job := await uow.jobs.find(i)) is not None]
    except Exception:
        return []


async def until(check: Callable[[], Coroutine[Any, Any, bool]], timeout: float) -> float | None:
    """Seconds until `check()` holds, or None if it did not within `timeout`."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if await check():
            return time.monotonic() - began
        await asyncio.sleep(0.2)
    return None


async def running_again(db: SqlDatabase, job_id: int, attempts: int) -> bool:
    found = await rows(db, [job_id])
    return bool(found) and found[0].attempts >= attempts and found[0].status != JobStatus.QUEUED


class Chaos:
    """The processes of one run and the jobs it asked for."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pg = PostgresServer(Path(tempfile.mkdtemp(prefix="storyloom-chaos-pg-")))
        self.redis = RedisServer(folder / "redis")
        self.workers: list[WorkerProcess] = []
        self.reports = Reports()
        self.asked: list[int] = []
        self.url = ""
        self.settings: dict[str, Any] = {}
        self.deps: Deps | None = None

    async def start(self) -> None:
        models = self.folder / "models"
        load_pipeline("tiny-sdxl", cache_dir=models)
        self.pg.start()
        self.redis.start()
        self.url = await self.pg.create_database("chaos")
        await upgrade_database(self.url)
        self.settings = tiny_settings(self.folder, self.url, models, STEPS)

    def start_worker(self) -> WorkerProcess:
        name = f"worker-{len(self.workers) + 1}"
        worker = WorkerProcess(name, self.folder, self.settings, BrokerOptions(self.redis.url))
        self.workers.append(worker)
        return worker

    @asynccontextmanager
    async def bot(self, db: SqlDatabase) -> AsyncIterator[None]:
        settings = load_settings(
            queue="redis", redis_url=self.redis.url, output_dir=self.folder / "bot-out"
        )
        async with job_runtime(settings, db, self.reports) as jobs:
            self.deps = Deps(db, jobs.queue, STYLE_NAMES, "comic")
            yield
            self.deps = None

    async def ask(self, actor: Actor) -> RenderJob:
        assert self.deps is not None
        job = await service.render(self.deps, actor)
        self.asked.append(job.id)
        return job

    def owner(self, job_id: int) -> WorkerProcess | None:
        """The worker that logged running this job (not "job 12" for job 1)."""
        line = re.compile(rf"\bjob {job_id} running$", re.MULTILINE)
        return next((w for w in self.workers if line.search(w.text())), None)

    def stop(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.terminate()
        self.redis.stop()
        self.pg.remove()


async def stories(db: SqlDatabase) -> None:
    deps = Deps(db, _Nowhere(), STYLE_NAMES, "comic")
    for actor, panels in ((SHORT, 2), (LONG, 8)):
        await service.new_story(deps, actor, "Chaos")
        for i in range(panels):
            await service.add_beat(deps, actor, f"a lighthouse at dawn, panel {i}")


class _Nowhere:
    async def submit(self, job_id: int) -> None:
        """Stories only: nothing is rendered through this."""


async def takeover(chaos: Chaos, db: SqlDatabase) -> float | None:
    """Kill -9 the worker of a running job with BACKLOG jobs waiting."""
    first = await chaos.ask(LONG)
    for _ in range(BACKLOG + 1):
        await chaos.ask(SHORT)
    await until(lambda: running_again(db, first.id, 1), 120)
    owner = await _owner_of(chaos, first.id)
    if owner is None:
        return None
    owner.kill()
    return await until(lambda: running_again(db, first.id, 2), 240)


async def _owner_of(chaos: Chaos, job_id: int) -> WorkerProcess | None:
    for _ in range(100):
        if (found := chaos.owner(job_id)) is not None:
            return found
        await asyncio.sleep(0.1)
    return None


async def lost_message(chaos: Chaos, db: SqlDatabase) -> float | None:
    """Both workers busy; a job asked for; Redis restarted without its data."""
    await until(lambda: _all_ended(db, chaos.asked), 300)
    busy = [await chaos.ask(LONG) for _ in range(2)]
    await until(lambda: _all_running(db, [j.id for j in busy]), 120)
    waiting = await chaos.ask(SHORT)
    await asyncio.sleep(0.5)
    assert chaos.redis.process is not None
    chaos.redis.process.kill()  # its data is lost with it: no append-only file survives
    chaos.redis.process.wait(10)
    chaos.redis.process = None
    shutil.rmtree(chaos.redis.folder)
    chaos.redis.start()
    return await until(lambda: running_again(db, waiting.id, 1), 180)


async def db_outage(chaos: Chaos, db: SqlDatabase) -> int:
    """PostgreSQL down for OUTAGE_S while two jobs render and one waits."""
    await until(lambda: _all_ended(db, chaos.asked), 300)
    jobs = [await chaos.ask(LONG), await chaos.ask(LONG), await chaos.ask(SHORT)]
    await until(lambda: _all_running(db, [j.id for j in jobs[:2]]), 120)
    await asyncio.to_thread(chaos.pg.stop)
    await asyncio.sleep(OUTAGE_S)
    await asyncio.to_thread(chaos.pg.start)
    await until(lambda: _all_ended(db, [j.id for j in jobs]), 300)
    ended = await rows(db, [j.id for j in jobs])
    return sum(j.status != JobStatus.DONE or j.attempts > 1 for j in ended)


async def caps(url: str) -> int:
    """Jobs admitted over the caps by concurrent requests through three pools."""
    limits = JobLimits(per_member=5, per_workspace=10)
    async with (
        open_database(url) as a,
        open_database(url) as b,
        open_database(url) as c,
    ):
        pools = [Deps(x, _Nowhere(), STYLE_NAMES, "comic", admit_job=JobAdmission(limits))
                 for x in (a, b, c)]  # fmt: skip
        over = 0
        for name, actors, cap in (
            ("one", [Actor("cap1", "c", f"t{i}", "ann", "Ann") for i in range(12)], 5),
            ("many", [Actor("cap2", "c", f"t{i}", f"m{i}", "M") for i in range(12)], 10),
        ):
            for actor in actors:
                await service.new_story(pools[0], actor, f"Caps {name}")
                await service.add_beat(pools[0], actor, "a beach")

            async def ask(i: int, actor: Actor) -> bool:
                try:
                    await service.render(pools[i % 3], actor)
                except LimitExceeded:
                    return False
                return True

            admitted = sum(await asyncio.gather(*(ask(i, x) for i, x in enumerate(actors))))
            over += max(0, admitted - cap)
        return over


async def _all_ended(db: SqlDatabase, ids: list[int]) -> bool:
    found = await rows(db, ids)
    return len(found) == len(ids) and all(j.status in FINAL for j in found)


async def _all_running(db: SqlDatabase, ids: list[int]) -> bool:
    found = await rows(db, ids)
    return len(found) == len(ids) and all(j.status == JobStatus.RUNNING for j in found)


async def run(folder: Path) -> dict[str, object]:
    chaos = Chaos(folder)
    began = time.monotonic()
    try:
        await chaos.start()
        for _ in range(2):
            chaos.start_worker()
        for worker in chaos.workers:
            worker.wait_ready(180)
        async with open_database(chaos.url) as db:
            await stories(db)
            async with chaos.bot(db):
                took_over = await takeover(chaos, db)
                chaos.start_worker().wait_ready(180)  # the operator's supervisor restarts it
            async with chaos.bot(db):  # a bot restart between scenarios
                lost_wait = await lost_message(chaos, db)
                lost_renders = await db_outage(chaos, db)
                await until(lambda: _all_ended(db, chaos.asked), 300)
                await asyncio.sleep(3)  # the watcher's last reports
            over_caps = await caps(chaos.url)
            ended = await rows(db, chaos.asked)
    finally:
        chaos.stop()
    finals = chaos.reports.finals
    done = [j for j in ended if j.status in FINAL]
    return {
        "lost_reports": sum(finals[j.id] == 0 for j in done),
        "duplicate_reports": sum(finals[j.id] > 1 for j in done),
        "stuck_jobs": len(chaos.asked) - len(done),
        "cap_violations": over_caps,
        "takeover_with_backlog_s": None if took_over is None else round(took_over, 1),
        "wait_after_lost_message_s": None if lost_wait is None else round(lost_wait, 1),
        "renders_lost_to_db_outage": lost_renders,
        "jobs": len(chaos.asked),
        "failed_jobs": sum(j.status == JobStatus.FAILED for j in ended),
        "run_s": round(time.monotonic() - began, 1),
        "targets": TARGETS,
        "settings": {
            "model": "tiny-sdxl",
            "px": 64,
            "steps": STEPS,
            "workers": 2,
            "outage_s": OUTAGE_S,
            "backlog": BACKLOG,
        },
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="storyloom-chaos-") as tmp:
        figures = asyncio.run(run(Path(tmp)))
    write_json(args.json, figures)
    print(f"{'figure':28} {'measured':>10} {'target':>8}")
    for key, target in TARGETS.items():
        bound = f"<= {target}" if key.endswith("_s") else f"{target}"
        print(f"{key:28} {figures[key]!s:>10} {bound:>8}")
    print(f"{'jobs / failed / run s':28} {figures['jobs']}/{figures['failed_jobs']}/"
          f"{figures['run_s']}")  # fmt: skip


if __name__ == "__main__":
    main()
