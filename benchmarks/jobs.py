"""Render-job transport: what the queue costs, and what a second worker process buys.

    python benchmarks/jobs.py --json jobs.json

With the tiny offline model (64 px, 2 steps, one CPU thread per process), a real
`redis-server` on a free port and one SQLite file shared by path:

- queue_overhead_ms: for a page job sent through Redis to one worker process, the time
  from the job row's creation to the worker's `done` stamp on it, minus that job's own
  render (`render_job` inside the worker, from its log line), median over 10 jobs. It
  holds taskiq and Redis, the claim, the progress written to the row and the result files
  saved with `done`. Paired per job, so a render slowed by a busy machine neither counts
  as queue time nor hides it; `queue_overhead_unpaired_ms` is the median through the
  queue minus the median direct `render_job` in this process (noisier). The timestamps
  come from the row, so the benchmark's own polling, every 50 ms, adds nothing to it.
- bot_told_after_done_ms: how long after the `done` stamp the bot side (`job_runtime`,
  queue = redis, its own output folder) tells its notifier, files included; median of 10.
- two_worker_speedup: throughput of two worker processes over one, on a backlog of 20 jobs
  submitted at once.

Targets: overhead <= 50 ms, speedup >= 1.6 (two cores).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from report import machine, write_json

from storyloom.config import load_settings
from storyloom.generation.models import load_pipeline
from storyloom.generation.renderer import RenderSettings, StoryRenderer
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.artifacts import JobInput, render_job
from storyloom.jobs.broker import TaskiqQueue, redis_broker
from storyloom.jobs.events import JobEvent
from storyloom.jobs.runtime import job_runtime
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.story import service
from storyloom.story.model import Actor, JobStatus
from storyloom.story.service import Deps
from storyloom.testing.devservices import (
    RedisServer,
    WorkerProcess,
    fast_options,
    tiny_settings,
)

ANN = Actor("w", "c", "t", "ann", "Ann")
STEPS = 2
BACKLOG = 20
ROUNDS = 10
LOG_LINE = re.compile(
    r"(?P<at>\S+ \S+) storyloom\.jobs\.worker_main job (?P<job>\d+) (?P<status>\w+)"
)


async def wait_done(db: SqlDatabase, job_ids: list[int], timeout: float = 300) -> None:
    """Poll the rows every 50 ms until every job is done."""
    deadline = time.monotonic() + timeout
    left = set(job_ids)
    while left:
        async with db.reading() as uow:
            for job_id in list(left):
                job = await uow.jobs.find(job_id)
                assert job is not None
                if job.status == JobStatus.FAILED:
                    raise RuntimeError(f"job {job_id} failed: {job.error}")
                if job.status == JobStatus.DONE:
                    left.discard(job_id)
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs not done: {sorted(left)}")
        await asyncio.sleep(0.05)


RENDERED = re.compile(r"storyloom\.jobs\.local job (?P<job>\d+) rendered in (?P<ms>[\d.]+) ms")


def rendered_ms(log: str) -> dict[int, float]:
    """Each job's own render (`render_job` in the worker), from the worker's log."""
    return {int(m["job"]): float(m["ms"]) for m in RENDERED.finditer(log)}


def worker_side_ms(log: str, job_ids: list[int]) -> float:
    """Median time between a worker's "job N running" and "job N done" log lines."""
    stamps: dict[tuple[int, str], datetime] = {}
    for line in log.splitlines():
        found = LOG_LINE.match(line)
        if found:
            at = datetime.strptime(found["at"], "%Y-%m-%d %H:%M:%S,%f")
            stamps[(int(found["job"]), found["status"])] = at
    spans = [(stamps[(i, "done")] - stamps[(i, "running")]).total_seconds() * 1000 for i in job_ids]
    return statistics.median(spans)


async def direct_ms(db: SqlDatabase, models: Path, folder: Path, job_id: int) -> float:
    """Median time of rendering the job's inputs directly, in this process."""
    torch.set_num_threads(1)
    loaded = load_pipeline("tiny-sdxl", cache_dir=models)
    renderer = StoryRenderer(loaded, RenderSettings(width=64, height=64, steps=STEPS), folder)
    async with db.reading() as uow:
        job = await uow.jobs.find(job_id)
        assert job is not None
        story = await uow.stories.by_id(job.story_id)
        assert story is not None
        beats = await uow.beats.page(story.id, 0, 100)
        cast = await uow.characters.list(story.id)
    work = JobInput(job, story, beats, cast)
    render_job(renderer, work, folder / "warm-up")
    times = []
    for i in range(ROUNDS):
        start = time.perf_counter()
        render_job(renderer, work, folder / f"direct-{i}")
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def bot_side_ms(db: SqlDatabase, folder: Path, redis_url: str, deps: Deps) -> float:
    """Median time from a job's `done` stamp to the bot-side notifier's DONE event (the
    watcher's poll, and the result files read from the database)."""
    heard: dict[int, float] = {}

    async def notify(event: JobEvent) -> None:
        if event.status == JobStatus.DONE:
            heard[event.job.id] = datetime.now(UTC).timestamp()

    settings = load_settings(queue="redis", output_dir=folder / "bot-out")
    async with job_runtime(settings, db, notify, options=fast_options(redis_url)) as jobs:
        bot = replace(deps, queue=jobs.queue)
        mine = []  # the earlier phases' results are reported at start too: not counted
        for _ in range(ROUNDS):
            job = await service.render(bot, ANN)
            mine.append(job.id)
            while job.id not in heard:
                await asyncio.sleep(0.01)
    async with db.reading() as uow:
        done = [await uow.jobs.find(i) for i in mine]
    return statistics.median(
        (heard[row.id] - row.updated_at.timestamp()) * 1000 for row in done if row
    )


async def run(folder: Path) -> dict[str, object]:
    models = folder / "models"
    load_pipeline("tiny-sdxl", cache_dir=models)
    redis = RedisServer(folder / "redis")
    redis.start()
    url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    await upgrade_database(url)
    broker = redis_broker(fast_options(redis.url))
    await broker.startup()
    workers: list[WorkerProcess] = []

    def start_workers(count: int) -> None:
        for worker in workers:
            worker.terminate()
        workers.clear()
        settings = tiny_settings(folder, url, models, STEPS)
        for i in range(count):
            workers.append(
                WorkerProcess(f"w{count}-{i}", folder, settings, fast_options(redis.url))
            )
        for worker in workers:
            worker.wait_ready(120)

    try:
        async with open_database(url) as db:
            deps = Deps(db, TaskiqQueue(broker), STYLE_NAMES, "comic")
            await service.new_story(deps, ANN, "Bench")
            await service.cast_character(deps, ANN, "Mira", "a girl with red hair")
            await service.add_beat(deps, ANN, "[Mira] walks on a beach")
            await service.add_beat(deps, ANN, "[Mira] climbs the stairs")

            # 1. one worker, one job at a time: submit → done
            start_workers(1)
            await wait_done(db, [(await service.render(deps, ANN)).id])  # warm-up
            through = []
            through_ids = []
            for _ in range(ROUNDS):
                job = await service.render(deps, ANN)
                through_ids.append(job.id)
                await wait_done(db, [job.id])
                async with db.reading() as uow:
                    done = await uow.jobs.find(job.id)
                assert done is not None
                through.append((done.updated_at - done.created_at).total_seconds() * 1000)
            in_worker = worker_side_ms(workers[0].text(), through_ids)
            renders = rendered_ms(workers[0].text())
            # per job: its time through the queue minus its own render in the worker, so a
            # render slowed by a busy machine is not counted as queue time (or hides it)
            paired = statistics.median(
                t - renders[i] for t, i in zip(through, through_ids, strict=True)
            )
            direct = await direct_ms(db, models, folder / "direct", job.id)

            # 2. the bot's side: how long after the `done` stamp its notifier hears of it
            told_after = await bot_side_ms(db, folder, redis.url, deps)

            # 3. a backlog of 20 jobs on one worker, then on two
            seconds = {}
            for count in (1, 2):
                start_workers(count)
                ids = [(await service.render(deps, ANN)).id for _ in range(BACKLOG)]
                await wait_done(db, ids)
                async with db.reading() as uow:
                    rows = [await uow.jobs.find(job_id) for job_id in ids]
                first = min(r.created_at for r in rows if r is not None)
                last = max(r.updated_at for r in rows if r is not None)
                seconds[count] = (last - first).total_seconds()
            # how the backlog spread, and how long each render took with two side by side:
            # a render much slower than alone means the two processes shared one free core
            shares = [sum(f"job {i} done" in w.text() for i in ids) for w in workers]
            side_by_side = statistics.median(
                worker_side_ms(w.text(), [i for i in ids if f"job {i} done" in w.text()])
                for w in workers
            )
    finally:
        for worker in workers:
            worker.terminate()
        await broker.shutdown()
        redis.stop()

    queue_ms = statistics.median(through)
    return {
        "queue_overhead_ms": round(paired, 1),
        # the unpaired figure: median through the queue minus the median direct render in
        # this process (noisy on a shared machine: two medians of different runs)
        "queue_overhead_unpaired_ms": round(queue_ms - direct, 1),
        "through_queue_ms": round(queue_ms, 1),
        "direct_render_ms": round(direct, 1),
        # the worker's own running → done (its log), so the rest is transport and rows
        "worker_running_to_done_ms": round(in_worker, 1),
        "bot_told_after_done_ms": round(told_after, 1),
        "two_worker_speedup": round(seconds[1] / seconds[2], 2),
        "backlog_seconds_1_worker": round(seconds[1], 2),
        "backlog_seconds_2_workers": round(seconds[2], 2),
        "backlog_jobs": BACKLOG,
        "backlog_jobs_per_worker": shares,
        "render_ms_two_side_by_side": round(side_by_side, 1),
        "settings": {"model": "tiny-sdxl", "px": 64, "steps": STEPS, "threads_per_worker": 1},
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="storyloom-jobs-") as tmp:
        figures = asyncio.run(run(Path(tmp)))
    write_json(args.json, figures)
    for key in ("queue_overhead_ms", "queue_overhead_unpaired_ms", "through_queue_ms",
                "direct_render_ms", "worker_running_to_done_ms",
                "bot_told_after_done_ms"):  # fmt: skip
        print(f"{key:28} {figures[key]!s:>10}")
    for key in ("two_worker_speedup", "backlog_seconds_1_worker", "backlog_seconds_2_workers",
                "backlog_jobs_per_worker", "render_ms_two_side_by_side"):  # fmt: skip
        print(f"{key:28} {figures[key]!s:>10}")


if __name__ == "__main__":
    main()
