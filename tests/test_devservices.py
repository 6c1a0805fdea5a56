"""The throwaway servers of tests and benchmarks go away with the run that started them,
even a run killed outright (before, each killed run left its PostgreSQL cluster and its
redis-server running until the machine restarted)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from storyloom.testing.devservices import (
    REDIS_SERVER,
    PostgresServer,
    RedisServer,
    postgres_bindir,
    wait_until,
)

needs_both = pytest.mark.skipif(
    REDIS_SERVER is None or postgres_bindir() is None,
    reason="needs redis-server and the PostgreSQL server programs",
)

CHILD = """
import json, sys, tempfile, time
from pathlib import Path
from storyloom.testing.devservices import PostgresServer, RedisServer
redis = RedisServer(Path(sys.argv[1]))
redis.start()
postgres = PostgresServer(Path(tempfile.mkdtemp(prefix="storyloom-pg-")))
postgres.start()
postmaster = int((postgres.folder / "data" / "postmaster.pid").read_text().split()[0])
print(json.dumps({"redis": redis.process.pid, "postgres": postmaster,
                  "folder": str(postgres.folder)}), flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@needs_both
@pytest.mark.postgres
def test_a_killed_run_leaves_no_server_running(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "redis")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        started = json.loads(child.stdout.readline())
        assert alive(started["redis"]) and alive(started["postgres"])
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    wait_until(lambda: not alive(started["redis"]), 30, "redis-server to be stopped")
    wait_until(lambda: not alive(started["postgres"]), 30, "PostgreSQL to be stopped")
    wait_until(lambda: not os.path.exists(started["folder"]), 30, "the cluster's folder to go")


@pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server")
def test_a_server_stopped_cleanly_and_started_again_is_left_running(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    first = server._reaper
    server.stop()
    server.start()
    try:
        assert first is not None and first.process.returncode == 0  # it did nothing
        time.sleep(0.5)
        assert server._answers()
    finally:
        server.stop()


@pytest.mark.skipif(postgres_bindir() is None, reason="needs the PostgreSQL server programs")
@pytest.mark.postgres
def test_a_cluster_removed_cleanly_ends_its_reaper() -> None:
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="storyloom-pg-")))
    server.start()
    reaper = server._reaper
    server.stop()
    server.start()  # a stop keeps the cluster: the outage tests start it again
    assert reaper is not None and reaper.process.poll() is None
    server.remove()
    assert reaper.process.returncode == 0
    assert not server.folder.exists()
