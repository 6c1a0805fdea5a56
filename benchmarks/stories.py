"""Many members adding beats at once, through the service, into SQLite.

    python benchmarks/stories.py --json storyloom-out/bench/stories.json

200 members (10 per thread, 20 threads) each add 20 beats back to back, all at once
(a closed loop: no pauses between adds). Reports beats/s, add latency percentiles and
lost beats (every beat must be present exactly once, positions 1..N in each thread).
Targets: >= 1,000 beats/s, p99 <= 50 ms, 0 lost.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from report import machine, print_table, write_json

from storyloom.storage import open_database, upgrade_database
from storyloom.story import service
from storyloom.story.model import Actor

TARGET_BEATS_PER_SECOND = 1000
TARGET_P99_MS = 50.0
CAST = ("Mira", "Old Tom", "Gull")


class NullQueue:
    """Adding beats queues nothing; the service still needs a queue."""

    async def submit(self, job_id: int) -> None:
        return None


def actor(thread: int, member: int) -> Actor:
    return Actor("bench-guild", "bench-channel", f"thread-{thread}", f"m{member}", f"M {member}")


def beat_text(member: int, n: int) -> str:
    who = CAST[(member + n) % len(CAST)]
    return (
        f"[{who}] walks the cliff path at dusk, beat {n} of member {member}, lantern swinging "
        f'# The wind rose. {who}: "Line {n} from {member}!"'
    )


async def member_loop(deps: service.Deps, thread: int, member: int, beats: int) -> list[float]:
    latencies = []
    who = actor(thread, member)
    for n in range(beats):
        start = time.perf_counter()
        await service.add_beat(deps, who, beat_text(member, n))
        latencies.append(time.perf_counter() - start)
    return latencies


async def run(members: int, beats: int, threads: int, db_path: Path) -> dict[str, object]:
    url = f"sqlite+aiosqlite:///{db_path}"
    await upgrade_database(url)
    async with open_database(url) as db:
        deps = service.Deps(db, NullQueue(), frozenset({"comic"}), "comic")
        for thread in range(threads):
            owner = actor(thread, -1)
            await service.new_story(deps, owner, f"Bench {thread}")
            for name in CAST:
                await service.cast_character(deps, owner, name, f"{name}, drawn plainly")

        start = time.perf_counter()
        results = await asyncio.gather(
            *(member_loop(deps, m % threads, m, beats) for m in range(members))
        )
        elapsed = time.perf_counter() - start

        lost, misplaced = 0, 0
        for thread in range(threads):
            page = await service.export(deps, actor(thread, -1))
            texts = [b.text for b in page.beats]
            misplaced += sum(b.position != i for i, b in enumerate(page.beats, 1))
            expected = {
                beat_text(m, n) for m in range(thread, members, threads) for n in range(beats)
            }
            lost += len(expected - set(texts)) + (len(texts) - len(set(texts)))

    latencies_ms = sorted(x * 1000 for r in results for x in r)
    total = len(latencies_ms)

    def pct(p: float) -> float:
        return latencies_ms[min(total - 1, int(p / 100 * total))]

    return {
        "members": members,
        "beats_per_member": beats,
        "threads": threads,
        "beats": total,
        "seconds": round(elapsed, 3),
        "beats_per_second": round(total / elapsed, 1),
        "p50_add_ms": round(pct(50), 2),
        "p99_add_ms": round(pct(99), 2),
        "max_add_ms": round(latencies_ms[-1], 2),
        "mean_add_ms": round(statistics.fmean(latencies_ms), 2),
        "lost_beats": lost,
        "misplaced_positions": misplaced,
        "targets": {"beats_per_second": TARGET_BEATS_PER_SECOND, "p99_add_ms": TARGET_P99_MS},
        "machine": machine(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--beats", type=int, default=20, help="beats per member")
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--db", type=Path, help="SQLite file (default: a fresh temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db_path = args.db or Path(tmp) / "bench.db"
        result = asyncio.run(run(args.members, args.beats, args.threads, db_path))

    rows = [
        ("beats", result["beats"], ""),
        ("beats/s", result["beats_per_second"], f">= {TARGET_BEATS_PER_SECOND}"),
        ("p50 add ms", result["p50_add_ms"], ""),
        ("p99 add ms", result["p99_add_ms"], f"<= {TARGET_P99_MS}"),
        ("max add ms", result["max_add_ms"], ""),
        ("lost beats", result["lost_beats"], "0"),
        ("misplaced", result["misplaced_positions"], "0"),
    ]
    print_table(("metric", "value", "target"), rows, 12, 10)
    write_json(args.json, result)
    if args.json:
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
