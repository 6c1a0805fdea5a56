"""The operations server: GET /healthz and GET /metrics on `STORYLOOM_OPS_PORT`.

It runs on the process's own event loop beside the bot or worker, with a database engine
of its own (a scrape never waits behind a render's writes for a connection). Port 0, the
default, serves nothing; the `Ops` state still exists, so callers need no special case.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storyloom.config import Settings
from storyloom.ops.job_counts import JobCounts, count_jobs
from storyloom.ops.metrics import Metrics
from storyloom.reader.http import Reader, reader_for
from storyloom.storage import SqlDatabase, create_engine

log = logging.getLogger(__name__)

DATABASE_TIMEOUT_S = 5.0  # a scrape or probe answers within this even if the database hangs


@dataclass
class Ops:
    """What the process tells the operations server: its role, metrics and phase."""

    role: str
    metrics: Metrics
    ready: bool = False  # set once the process does its work (a worker or bot: model loaded)
    stopping: bool = False  # set on SIGTERM: /healthz answers 503 from then on

    def set_ready(self) -> None:
        """The process does its work now (its model is loaded)."""
        self.ready = True


def ops_app(ops: Ops, engine: AsyncEngine, reader: Reader | None = None) -> web.Application:
    """The aiohttp application with the two routes (and the reader's, when given)."""

    async def healthz(_request: web.Request) -> web.Response:
        database = await _database_state(engine)
        healthy = database == "ok" and not ops.stopping
        body = {
            "status": "ok" if healthy else "unhealthy",
            "role": ops.role,
            "ready": ops.ready,
            "stopping": ops.stopping,
            "database": database,
        }
        return web.json_response(body, status=200 if healthy else 503, dumps=json.dumps)

    async def metrics(_request: web.Request) -> web.Response:
        counts: JobCounts | None
        try:
            counts = await asyncio.wait_for(count_jobs(engine), DATABASE_TIMEOUT_S)
        except Exception as error:  # serve the rest; storyloom_database_up says why it is 0
            log.warning("metrics: database not read: %s", type(error).__name__)
            counts = None
        ops.metrics.record_counts(counts)
        return web.Response(
            body=ops.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    if reader is not None:
        reader.add_routes(app)
    return app


async def _database_state(engine: AsyncEngine) -> str:
    """'ok', or the name of the error that a trivial query met (never its text: it may
    quote the URL)."""
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_S), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:
        return type(error).__name__
    return "ok"


@asynccontextmanager
async def ops_server(settings: Settings, role: str) -> AsyncIterator[Ops]:
    """Serve /healthz and /metrics while the block runs (nothing when the port is 0)."""
    ops = Ops(role, Metrics(role))
    if settings.ops_port == 0:
        yield ops
        return
    engine = create_engine(settings.database_url)
    # the bot side serves shared stories' reader pages; a GPU worker has no chat outputs
    reader = None if role == "worker" else reader_for(settings, SqlDatabase(engine))
    runner = web.AppRunner(ops_app(ops, engine, reader), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.ops_host, settings.ops_port).start()
        log.info(
            "operations server on http://%s:%d (/healthz, /metrics)",
            settings.ops_host,
            settings.ops_port,
        )
        yield ops
    finally:
        await runner.cleanup()
        await engine.dispose()
