"""Readers of a shared story, all at once, over loopback; and the size of its story.html.

    python benchmarks/reader.py --json storyloom-out/bench/reader.json

A 6-page story (54 beats on the default 9-panel grid, 3 characters with 2-image sheets),
its pages drawn by the real page code, shared with a link. The reader runs as the bot side
runs it (the operations server, `storyloom.ops.server`) in a process of its own on a
SQLite file; this process plays 200 readers who each open the reader page at the same
moment, for several rounds after a warm-up one. All readers come from 127.0.0.1, so the
per-address rate limit is raised for the run (it would answer 429 to the crowd, by design).
The measuring process runs with its garbage collector off: its pauses (one crowd in five
took 300 ms because of them) are not the server's latency.

reader_p99_ms: the 99th percentile of the page request (HTML, token looked up, content
from the database or its 2-second cache). Also shown, not targets: the same crowd on the
server's emptiest route (what aiohttp and this machine cost before the reader does any
work), and a reader's full read (the page, then its 6 page images and 6 sheet images, one
after another).
export_html_bytes: story.html in the ZIP export, UTF-8, images not counted.
Targets: reader_p99_ms <= 100, export_html_bytes <= 50 KB.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import numpy as np
from PIL import Image
from report import machine, print_table, write_json

from storyloom.config import load_settings
from storyloom.generation.export import export_story
from storyloom.generation.pages.model import PagePanel, PageSpec
from storyloom.jobs.result_files import job_folder
from storyloom.storage import open_database, upgrade_database
from storyloom.storage.share_links import share_links
from storyloom.story import grammar, service, sharing
from storyloom.story.model import Actor, JobStatus
from storyloom.story.render_limits import RenderLimits
from storyloom.testing.devservices import free_port

TARGET_P99_MS = 100.0
TARGET_HTML_BYTES = 50 * 1024
BEATS = 54  # 6 pages of 9 panels
CAST = ("Mira", "Old Tom", "Gull")
OWNER = Actor("bench-guild", "bench-channel", "bench-thread", "owner", "Owner")


class NullQueue:
    """Jobs are finished by hand here; nothing is sent."""

    async def submit(self, job_id: int) -> None:
        return None


def panel_image(seed: int, size: tuple[int, int] = (512, 512)) -> Image.Image:
    """A seeded gradient with grain: compresses about like a drawn panel (pure noise would
    make every page several times larger than a real one)."""
    rng = np.random.default_rng(seed)
    w, h = size
    x = np.linspace(0, 255, w)[None, :, None]
    y = np.linspace(0, 255, h)[:, None, None]
    base = np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2) + seed * 37 % 120
    grain = rng.integers(-12, 12, (h, w, 3))
    return Image.fromarray(np.clip(base + grain, 0, 255).astype(np.uint8))


async def finish(deps: service.Deps, job_id: int, names: Sequence[str]) -> None:
    async with deps.db.writing() as uow:
        await uow.jobs.set_status(job_id, JobStatus.DONE, datetime.now(UTC), files=names)


async def build_story(url: str, out_dir: Path) -> tuple[str, int]:
    """The shared story; (its token, story.html's size in bytes)."""
    await upgrade_database(url)
    async with open_database(url) as db:
        # one page job of all 54 beats: above the default cap of 32 panels a job, as an
        # operator raises it (STORYLOOM_MAX_PANELS_PER_JOB)
        limits = RenderLimits(max_panels=BEATS)
        deps = service.Deps(db, NullQueue(), frozenset({"comic"}), "comic", render_limits=limits)
        await service.new_story(deps, OWNER, "The Last Lighthouse")
        for name in CAST:
            await service.cast_character(deps, OWNER, name, f"{name}, drawn plainly, in a coat")
            sheet = (await service.lock_look(deps, OWNER, name)).job
            assert sheet is not None
            folder = job_folder(out_dir, sheet.id)
            folder.mkdir(parents=True)
            for n in (1, 2):
                panel_image(100 * sheet.id + n, (256, 256)).save(folder / f"sheet-{n}.png")
            await finish(deps, sheet.id, ["sheet-1.png", "sheet-2.png"])
        for n in range(1, BEATS + 1):
            who = CAST[n % len(CAST)]
            await service.add_beat(
                deps,
                Actor("bench-guild", "bench-channel", "bench-thread", f"m{n % 7}", f"M{n % 7}"),
                f"[{who}] climbs the stairs of the lighthouse, step {n} "
                f'# The wind rose. {who}: "Line {n}!"',
            )
        job = await service.render(deps, OWNER)
        beats = (await service.export(deps, OWNER)).beats
        panels = [
            PagePanel.from_beat(
                grammar.parse(b.text).caption, panel_image(b.position), author=b.author_name
            )
            for b in beats
        ]
        authors = tuple({b.author_name: 0 for b in beats})
        spec = PageSpec(title="The Last Lighthouse", contributors=authors)
        cast = [(name, f"{name}, drawn plainly, in a coat") for name in CAST]
        files = export_story(
            panels, spec, job_folder(out_dir, job.id), ("png", "zip"), stem="story", cast=cast
        ).files()
        await finish(deps, job.id, [p.name for p in files])
        pages = [p for p in files if p.name.startswith("story-page-")]
        assert len(pages) == 6, f"{len(pages)} pages"
        (archive,) = [p for p in files if p.suffix == ".zip"]
        with zipfile.ZipFile(archive) as zf:
            html_bytes = len(zf.read("story.html"))
        link = await sharing.share(deps, share_links, OWNER, "https://bench.example")
    return link.url.rsplit("/", 1)[1], html_bytes


async def serve(url: str, out_dir: Path, port: int) -> None:
    """The bot side's operations server, until killed."""
    from storyloom.ops.server import ops_server

    settings = load_settings(
        database_url=url,
        output_dir=out_dir,
        ops_port=port,
        reader_burst=1_000_000,
        reader_requests_per_minute=1_000_000,
    )
    async with ops_server(settings, "discord"):
        print("ready", flush=True)
        await asyncio.Event().wait()


async def timed_get(
    session: aiohttp.ClientSession, url: str, status: int = 200
) -> tuple[float, bytes]:
    start = time.perf_counter()
    async with session.get(url) as response:
        body = await response.read()
        assert response.status == status, (response.status, url)
    return time.perf_counter() - start, body


async def rounds_of(
    session: aiohttp.ClientSession, url: str, readers: int, rounds: int, status: int = 200
) -> list[list[float]]:
    """Latencies in ms of `rounds` crowds of `readers` requests sent at once, by round."""
    out = []
    for _ in range(rounds):
        got = await asyncio.gather(*(timed_get(session, url, status) for _ in range(readers)))
        out.append([seconds * 1000 for seconds, _ in got])
    return out


def merged(rounds: list[list[float]]) -> list[float]:
    return sorted(ms for one in rounds for ms in one)


async def full_read(session: aiohttp.ClientSession, page_url: str) -> tuple[float, int]:
    """(seconds, bytes) of reading the page and then each of its images."""
    start = time.perf_counter()
    _, body = await timed_get(session, page_url)
    size = len(body)
    for src in re.findall(rb'<img src="([^"]+)"', body):
        size += len((await timed_get(session, urljoin(page_url, src.decode())))[1])
    return time.perf_counter() - start, size


async def crowd(port: int, token: str, readers: int, rounds: int) -> dict[str, object]:
    base = f"http://127.0.0.1:{port}"
    page_url = f"{base}/s/{token}"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await rounds_of(session, page_url, readers, 1)  # warm-up: connections, caches
        page_rounds = await rounds_of(session, page_url, readers, rounds)
        # the floor: the same crowd on the server's emptiest route (the icon's 204)
        empty_rounds = await rounds_of(session, f"{base}/favicon.ico", readers, rounds, 204)
        full_s = await asyncio.gather(*(full_read(session, page_url) for _ in range(readers)))
    full_ms = sorted(seconds * 1000 for seconds, _ in full_s)
    page_ms, empty_ms = merged(page_rounds), merged(empty_rounds)

    def pct(values: list[float], p: float) -> float:
        return round(values[min(len(values) - 1, int(p / 100 * len(values)))], 2)

    return {
        "requests": len(page_ms),
        "reader_p50_ms": pct(page_ms, 50),
        "reader_p99_ms": pct(page_ms, 99),
        "reader_max_ms": round(page_ms[-1], 2),
        "reader_mean_ms": round(statistics.fmean(page_ms), 2),
        "empty_route_p99_ms": pct(empty_ms, 99),
        # the slowest request of each crowd: one slow crowd (the machine busy elsewhere)
        # shows as one high value here, not as a slow reader
        "reader_round_max_ms": [round(max(one), 2) for one in page_rounds],
        "empty_round_max_ms": [round(max(one), 2) for one in empty_rounds],
        "full_read_p50_ms": pct(full_ms, 50),
        "full_read_p99_ms": pct(full_ms, 99),
        "full_read_bytes": full_s[0][1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="crowds after the warm-up one")
    parser.add_argument(
        "--database-url", help="an empty database to use (default: a temporary SQLite file)"
    )
    parser.add_argument("--serve", nargs=3, metavar=("URL", "OUT", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve[0], Path(args.serve[1]), int(args.serve[2])))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'reader.db'}"
        out_dir = Path(tmp) / "out"
        token, html_bytes = asyncio.run(build_story(url, out_dir))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", url, str(out_dir), str(port)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "STORYLOOM_LOG_LEVEL": "WARNING"},
        )
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            # the measuring side: its own garbage collections are not the server's latency
            gc.disable()
            result = asyncio.run(crowd(port, token, args.readers, args.rounds))
            gc.enable()
        finally:
            server.kill()
            server.wait(10)

    result |= {
        "readers": args.readers,
        "rounds": args.rounds,
        "pages": 6,
        "export_html_bytes": html_bytes,
        "targets": {"reader_p99_ms": TARGET_P99_MS, "export_html_bytes": TARGET_HTML_BYTES},
        "database": url.split(":", 1)[0],
        "machine": machine(),
    }
    rows = [
        ("readers at once", result["readers"], ""),
        ("page requests", result["requests"], ""),
        ("reader p50 ms", result["reader_p50_ms"], ""),
        ("reader p99 ms", result["reader_p99_ms"], f"<= {TARGET_P99_MS:g}"),
        ("reader max ms", result["reader_max_ms"], ""),
        ("empty route p99 ms", result["empty_route_p99_ms"], "(same crowd, 204, the floor)"),
        ("full read p50 ms", result["full_read_p50_ms"], "(page + 12 images)"),
        ("full read p99 ms", result["full_read_p99_ms"], ""),
        ("full read bytes", result["full_read_bytes"], ""),
        ("export html bytes", result["export_html_bytes"], f"<= {TARGET_HTML_BYTES}"),
        (
            "load average (1m)",
            result["machine"]["load_average_1m"],
            f"({result['machine']['cpu_count']} CPUs)",
        ),
    ]
    print_table(("metric", "value", "target"), rows, 19, 10)
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
