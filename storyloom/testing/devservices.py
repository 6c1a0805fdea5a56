"""Throwaway real processes for tests, benchmarks and local trials of the distributed mode:
a PostgreSQL cluster and a `redis-server`, each in a folder of its own, and worker
processes (`run_worker` in a child Python), on free ports. Nothing here is used by the bot
or the worker themselves."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from storyloom.jobs.broker import BrokerOptions

REDIS_SERVER = shutil.which("redis-server")


def postgres_bindir() -> Path | None:
    """Where the PostgreSQL server programs (initdb, pg_ctl) are, if installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = found[-1] if found else shutil.which("initdb")
    return None if initdb is None else Path(initdb).parent


def fast_options(redis_url: str) -> BrokerOptions:
    """Short timeouts, so a dead worker's job is reclaimed within seconds, not half an hour."""
    return BrokerOptions(
        redis_url=redis_url,
        redelivery_after_s=3.0,
        take_over_after_s=1.5,
        heartbeat_s=0.3,
        noop_every_s=0.5,
        read_block_ms=500,
    )


WORKER_SCRIPT = """
import asyncio, json, logging, sys
from storyloom.config import load_settings
from storyloom.jobs.broker import BrokerOptions
from storyloom.jobs.worker_main import run_worker
config = json.loads(sys.argv[1])
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
asyncio.run(run_worker(load_settings(**config["settings"]), BrokerOptions(**config["options"])))
"""


# Runs beside the process that started a server and waits on a pipe from it. A clean stop
# writes "done" and closes the pipe: nothing to do. A pipe that ends with nothing written
# means that process died (a killed test run, a `timeout`): the server is stopped and its
# folder removed, not left running until the machine restarts.
REAPER_SCRIPT = """
import json, os, shutil, signal, subprocess, sys
job = json.loads(sys.argv[1])
if sys.stdin.buffer.read() == b"done":
    sys.exit(0)
if job.get("pid"):
    try:
        os.kill(job["pid"], signal.SIGKILL)
    except OSError:
        pass
if job.get("command"):
    subprocess.run(job["command"], capture_output=True)
if job.get("folder"):
    shutil.rmtree(job["folder"], ignore_errors=True)
"""


class Reaper:
    """Stops a server if the process that started it dies without stopping it."""

    def __init__(
        self,
        pid: int | None = None,
        command: list[str] | None = None,
        folder: Path | None = None,
    ) -> None:
        job = {"pid": pid, "command": command, "folder": None if folder is None else str(folder)}
        # its own session: a signal to the test run's process group does not reach it
        self.process = subprocess.Popen(
            [sys.executable, "-c", REAPER_SCRIPT, json.dumps(job)],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )

    def cancel(self) -> None:
        """The server was stopped cleanly: the reaper exits and does nothing."""
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.write(b"done")
            self.process.stdin.close()
        self.process.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(done: Any, timeout: float, what: str, every: float = 0.05) -> None:
    """Poll `done()` until it is true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting: {what}")
        time.sleep(every)


class RedisServer:
    """A redis-server in a folder of its own, with an append-only file so a restart keeps
    the stream and its consumer group, as a production Redis would."""

    def __init__(self, folder: Path, password: str | None = None) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.folder = folder
        self.port = free_port()
        self.password = password  # with one, clients must AUTH (as a production Redis)
        self.process: subprocess.Popen[bytes] | None = None
        self._reaper: Reaper | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.folder), "--save", "", "--appendonly", "yes"]
        if self.password:
            args += ["--requirepass", self.password]
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        if self._reaper is not None:  # the last process was killed, not stopped
            self._reaper.cancel()
        self._reaper = Reaper(pid=self.process.pid)
        wait_until(self._answers, 10, "redis-server to accept connections")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # NOAUTH: up, locked
        except OSError:
            return False


class PostgresServer:
    """A PostgreSQL cluster in a folder of its own: trust auth, loopback only, no fsync.
    initdb refuses to run as root, so as root the server runs as the `postgres` user (the
    folder must be one it can reach, e.g. from `tempfile.mkdtemp`)."""

    def __init__(self, folder: Path) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError("the PostgreSQL server programs (initdb, pg_ctl) are not installed")
        self.bindir, self.folder, self.port = bindir, folder, free_port()
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._made = False
        self._reaper: Reaper | None = None

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one database in this cluster."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Create the cluster (the first time) and start it; it keeps its data across stops."""
        if not self._made:
            self.folder.mkdir(parents=True, exist_ok=True)
            if self._as_postgres:
                shutil.chown(self.folder, "postgres")
            self._run("initdb", "-D", self.folder / "data", "-A", "trust", "-U", "postgres",
                      "-E", "UTF8", "--no-sync")  # fmt: skip
            self._made = True
            # pg_ctl's server outlives the test run: removed if the run dies before remove()
            stop = self._command("pg_ctl", "-D", self.folder / "data", "-m", "immediate", "stop")
            self._reaper = Reaper(command=stop, folder=self.folder)
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", self.folder / "data", "-o", options, "-l",
                  self.folder / "log", "-w", "start")  # fmt: skip

    def stop(self) -> None:
        """Stop at once (as a crash or a cut network would look to clients)."""
        self._run("pg_ctl", "-D", self.folder / "data", "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        """Stop if running and delete the cluster's folder."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None

    async def create_database(self, name: str) -> str:
        """Create an empty database; its URL."""
        import asyncpg  # the `postgres` extra

        admin = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres"
        )
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        return self.url(name)

    def _command(self, program: str, *args: object) -> list[str]:
        return [*self._as_postgres, str(self.bindir / program), *map(str, args)]

    def _run(self, program: str, *args: object) -> None:
        subprocess.run(self._command(program, *args), check=True, capture_output=True, text=True)


class WorkerProcess:
    """One `run_worker` child process with tiny settings; its log is a file."""

    def __init__(self, name: str, folder: Path, settings: dict[str, Any], options: BrokerOptions):
        self.log = folder / f"{name}.log"
        config = json.dumps({"settings": settings, "options": asdict(options)})
        env = dict(os.environ, HF_HUB_OFFLINE="1", STORYLOOM_CONFIG_FILE=str(folder / "none"))
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, config],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 240) -> None:
        """Wait until the worker says it is ready (it imports torch and loads the model:
        on a loaded machine that has taken over a minute)."""

        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.text()}")
            return "worker ready" in self.text()

        wait_until(ready, timeout, f"worker ready ({self.log})")

    def has_line(self, fragment: str) -> bool:
        return fragment in self.text()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout)


def tiny_settings(folder: Path, database_url: str, models: Path, steps: int) -> dict[str, Any]:
    """Worker settings: the tiny offline model at 64 px, files under `folder`."""
    return {
        "model": "tiny-sdxl",
        "model_cache_dir": str(models),
        "width": 64,
        "height": 64,
        "steps": steps,
        "cpu_threads": 1,
        "device": "cpu",
        "database_url": database_url,
        "output_dir": str(folder / "out"),
        "store_dir": str(folder / "stores"),
    }
