"""Real `storyloom worker` processes for the operations tests: the CLI command itself,
configured only through STORYLOOM_* variables, as in a container."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import ClassVar

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from storyloom.storage import open_database
from storyloom.storage.tables import BeatRow, RenderJobRow
from storyloom.storage.unit_of_work import session_of
from storyloom.testing.devservices import free_port, wait_until

# In the environment of every worker: the tests prove they never reach a log line.
DISCORD_TOKEN = "discord-token-that-must-never-be-logged"


def worker_env(folder: Path, database_url: str, redis_url: str, models: Path, **extra: str):
    """The environment of a tiny-model CPU worker with JSON logs and an operations port."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STORYLOOM_")}
    return {
        **clean,
        "HF_HUB_OFFLINE": "1",
        "STORYLOOM_CONFIG_FILE": str(folder / "none.toml"),
        "STORYLOOM_MODEL": "tiny-sdxl",
        "STORYLOOM_MODEL_CACHE_DIR": str(models),
        "STORYLOOM_WIDTH": "64",
        "STORYLOOM_HEIGHT": "64",
        "STORYLOOM_DEVICE": "cpu",
        "STORYLOOM_DATABASE_URL": database_url,
        "STORYLOOM_QUEUE": "redis",
        "STORYLOOM_REDIS_URL": redis_url,
        "STORYLOOM_OUTPUT_DIR": str(folder / "out"),
        "STORYLOOM_STORE_DIR": str(folder / "stores"),
        "STORYLOOM_LOG_FORMAT": "json",
        "STORYLOOM_DISCORD_TOKEN": DISCORD_TOKEN,
        **extra,
    }


class CliWorker:
    """`python -m storyloom.cli worker` with its log in a file and its own ops port."""

    def __init__(self, name: str, folder: Path, env: dict[str, str]) -> None:
        self.log = folder / f"{name}.log"
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "storyloom.cli", "worker"],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**env, "STORYLOOM_OPS_PORT": str(self.port)},
            cwd=folder,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def messages(self) -> list[str]:
        """The `message` of every log line (each line must be one JSON object)."""
        return [json.loads(line)["message"] for line in self.text().splitlines() if line]

    def wait_for_line(self, fragment: str, timeout: float = 60) -> None:
        def seen() -> bool:
            if fragment in self.text():
                return True
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited before {fragment!r}:\n{self.text()}")
            return False

        wait_until(seen, timeout, f"{fragment!r} in {self.log}")

    def get(self, path: str) -> tuple[int, str]:
        """GET a path of the operations server: (status, body)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def sample(self, name: str, **labels: str) -> float:
        """One sample of the worker's /metrics, parsed by prometheus_client's parser."""
        status, body = self.get("/metrics")
        assert status == 200
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                wanted = all(sample.labels.get(k) == v for k, v in labels.items())
                if sample.name == name and wanted:
                    return sample.value
        raise AssertionError(f"no sample {name}{labels} in /metrics:\n{body}")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout)


class BotProcess:
    """What the bot-process harnesses share: `storyloom <command>` run as a child process
    (configured by `env()`), with one log per start; `start` it again after a kill."""

    command: ClassVar[str]  # the CLI command: "slack", "discord"
    folder: Path
    process: subprocess.Popen[bytes] | None
    starts: int

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def arguments(self) -> list[str]:
        """What follows the command on its line."""
        return []

    @property
    def log(self) -> Path:
        return self.folder / f"{self.command}-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        self.process = subprocess.Popen(
            [sys.executable, "-m", "storyloom.cli", self.command, *self.arguments()],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=self.env(),
            cwd=self.folder,
        )

    def logs(self) -> str:
        return "\n".join(
            (self.folder / f"{self.command}-{n}.log").read_text(errors="replace")
            for n in range(1, self.starts + 1)
        )

    def kill_if_running(self) -> None:
        """SIGKILL if it is still running (a test's clean-up after a failure)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def kill(self) -> None:
        """SIGKILL: no goodbye, whatever it was doing."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)

    def stop(self) -> int:
        """SIGTERM, then the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)


async def job_ids(db_url: str) -> list[int]:
    """Every render job's id in the database at `db_url`."""
    async with open_database(db_url) as db, db.reading() as uow:
        return list((await session_of(uow).scalars(select(RenderJobRow.id))).all())


async def beat_count(db_url: str) -> int:
    """How many beats the database at `db_url` holds."""
    async with open_database(db_url) as db, db.reading() as uow:
        return int(await session_of(uow).scalar(select(func.count()).select_from(BeatRow)) or 0)
