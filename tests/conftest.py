"""Real databases for every test folder that asks for `db`: a SQLite file per test, and a
throwaway PostgreSQL cluster per test run (testing/devservices.PostgresServer). Without the
PostgreSQL binaries the Postgres cases are skipped, unless STORYLOOM_TEST_REQUIRE_SERVICES=1
(CI), where that is a failure."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# One math thread per test process and per process a test starts (bots, workers): the tiny
# models gain nothing from more, and with several test processes on a 2-core machine torch's
# spinning thread pools made tests/jobs/test_runtime.py 3x slower (two copies side by side:
# 211 s with the default threads, 82 s with one), long enough for waits of 60 s to run out.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.testing.devservices import PostgresServer, postgres_bindir

_names = itertools.count()


def missing_service(reason: str) -> None:
    """Skip for a service this machine lacks; fail where CI says every service is there."""
    if os.environ.get("STORYLOOM_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (STORYLOOM_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL cluster for the whole run, removed at the end."""
    if postgres_bindir() is None:
        missing_service("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="storyloom-pg-")))
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'stories.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return await server.create_database(f"test_{os.getpid()}_{next(_names)}")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[SqlDatabase]:
    """A migrated database on each backend."""
    await upgrade_database(database_url)
    async with open_database(database_url) as database:
        yield database
