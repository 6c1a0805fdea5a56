"""Real databases: a SQLite file per test, and a throwaway PostgreSQL server per test run.

initdb refuses to run as root, so as root the server runs as the `postgres` user. Without
the PostgreSQL binaries the Postgres tests are skipped, unless
STORYLOOM_TEST_REQUIRE_SERVICES=1 (CI), where that is a failure.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.story.service import Deps

STYLES = frozenset({"comic", "manga"})
_names = itertools.count()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _missing(reason: str) -> None:
    if os.environ.get("STORYLOOM_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (STORYLOOM_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[tuple[str, int]]:
    """(host, port) of a fresh PostgreSQL cluster, trust auth, stopped at the end."""
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    if not initdb[-1]:
        _missing("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    bindir = Path(str(initdb[-1])).parent
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="storyloom-pg-"))
    if as_postgres:
        shutil.chown(root, "postgres")
    port = _free_port()
    run = lambda *args: subprocess.run(  # noqa: E731
        [*as_postgres, *map(str, args)], check=True, capture_output=True, text=True
    )
    run(bindir / "initdb", "-D", root / "data", "-A", "trust", "-U", "postgres", "-E", "UTF8",
        "--no-sync")  # fmt: skip
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(bindir / "pg_ctl", "-D", root / "data", "-o", options, "-l", root / "log", "-w", "start")
    try:
        yield "127.0.0.1", port
    finally:
        run(bindir / "pg_ctl", "-D", root / "data", "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'stories.db'}"
    import asyncpg

    host, port = request.getfixturevalue("postgres_server")
    name = f"test_{os.getpid()}_{next(_names)}"
    admin = await asyncpg.connect(host=host, port=port, user="postgres", database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"postgresql+asyncpg://postgres@{host}:{port}/{name}"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[SqlDatabase]:
    await upgrade_database(database_url)
    async with open_database(database_url) as database:
        yield database


class RecordingQueue:
    def __init__(self) -> None:
        self.submitted: list[int] = []

    async def submit(self, job_id: int) -> None:
        self.submitted.append(job_id)


@pytest.fixture
def deps(db: SqlDatabase) -> Deps:
    return Deps(db, RecordingQueue(), STYLES, "comic")
