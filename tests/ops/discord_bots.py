"""Real `storyloom discord` processes for the delivery tests and benchmark.

The bot is the CLI command itself, configured only through STORYLOOM_* variables: its
token, the loopback fake of Discord (`STORYLOOM_DISCORD_API_URL`: the REST API, which
names the gateway fake beside it), SQLite, and the distributed queue (a real
redis-server), or the embedded queue with the tiny model. Members are in two guilds, each
with a story thread. On Redis no `storyloom worker` runs: the caller plays the workers by
writing the job rows (`slack_bots.RowWorker`), so a render takes as long as the caller
says and the delivery is measured alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from storyloom.storage import upgrade_database
from storyloom.testing.devservices import RedisServer, free_port
from tests.discord_bot.fake_discord import (
    APP_ID,
    BOT_USER,
    FakeDiscord,
    guild,
    member,
    text_channel,
    thread,
)
from tests.discord_bot.fake_gateway import FakeGateway
from tests.ops.procs import BotProcess

TOKEN = "discord-bot-token-that-must-never-be-logged"
GUILD_A, GUILD_B = 777, 778
THREADS = {
    GUILD_A: thread(3001, parent_id=4242, guild_id=GUILD_A),
    GUILD_B: thread(3002, parent_id=4343, guild_id=GUILD_B),
}
CHANNELS = {GUILD_A: text_channel(4242, GUILD_A), GUILD_B: text_channel(4343, GUILD_B)}
ANN = member(11, "Ann")
BOB = member(12, "Bob")
STATUS_LINE = re.compile(r"^\S+ page job #(?P<job>\d+) ")


@dataclass
class DiscordBot(BotProcess):
    """One `storyloom discord` process; `start` it again after a kill."""

    command: ClassVar[str] = "discord"

    folder: Path
    db_url: str
    redis_url: str  # "": the embedded queue, rendering in the bot with the tiny model
    api_url: str
    ops_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    started_at: float = 0.0  # when the last start began (monotonic seconds)

    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("STORYLOOM_")}
        queue = {"STORYLOOM_QUEUE": "redis", "STORYLOOM_REDIS_URL": self.redis_url}
        if not self.redis_url:
            queue = {
                "STORYLOOM_QUEUE": "embedded",
                "STORYLOOM_MODEL": "tiny-sdxl",
                "STORYLOOM_MODEL_CACHE_DIR": str(self.folder / "models"),
                "STORYLOOM_DEVICE": "cpu",
                "STORYLOOM_STORE_DIR": str(self.folder / "stores"),
            }
        return {
            **clean,
            "HF_HUB_OFFLINE": "1",
            "STORYLOOM_CONFIG_FILE": str(self.folder / "none.toml"),
            "STORYLOOM_DATABASE_URL": self.db_url,
            **queue,
            "STORYLOOM_OUTPUT_DIR": str(self.folder / "out"),
            "STORYLOOM_DISCORD_TOKEN": TOKEN,
            "STORYLOOM_DISCORD_API_URL": self.api_url,
            "STORYLOOM_OPS_PORT": str(self.ops_port),
            "STORYLOOM_LOG_FORMAT": "json",
            "STORYLOOM_MAX_WAITING_PER_MEMBER": "100",
            "STORYLOOM_MAX_WAITING_PER_WORKSPACE": "200",
        }

    def start(self) -> None:
        self.started_at = time.monotonic()
        super().start()


@dataclass
class DiscordRun:
    """A running bot with its database and the fake Discord (REST and gateway) it uses."""

    db_url: str
    fake: FakeDiscord
    gateway: FakeGateway
    bot: DiscordBot
    exit_code: int | None = None  # the bot's, once it was stopped at the end
    connects_before: int = 0  # gateway connections before the bot's last start

    def restart(self) -> None:
        """Start the bot again (after a kill)."""
        self.connects_before = self.gateway.identifies + self.gateway.resumes
        self.bot.start()

    async def send(self, payload: dict[str, Any]) -> None:
        """A member's interaction, as Discord dispatches it to the connected bot."""
        assert self.bot.process is not None and self.bot.process.poll() is None, self.bot.logs()
        await self.gateway.dispatch("INTERACTION_CREATE", payload)

    async def ask(self, payload: dict[str, Any], timeout: float = 60) -> str:
        """Send one interaction; the text of the follow-up that answers it."""
        await self.send(payload)
        calls = await self.fake.wait_for("POST", f"/webhooks/{APP_ID}/{payload['token']}",
                                         timeout=timeout)  # fmt: skip
        return str((calls[0].json or {}).get("content", ""))

    async def first_ack(self, payload: dict[str, Any], timeout: float = 120) -> float:
        """Seconds from the bot's start until it acknowledged `payload` (sent as soon as its
        gateway connection is up); returns once its answer is there too."""
        await self.gateway.connected(after=self.connects_before, timeout=timeout)
        await self.send(payload)
        token = payload["token"]
        [ack] = await self.fake.wait_for("POST", f"/interactions/{payload['id']}/{token}/callback",
                                         timeout=timeout)  # fmt: skip
        await self.fake.wait_for("POST", f"/webhooks/{APP_ID}/{token}", timeout=timeout)
        return ack.at - self.bot.started_at


@asynccontextmanager
async def running_discord_bot(
    folder: Path, *, embedded: bool = False, heartbeat_ms: int = 41_250
) -> AsyncIterator[DiscordRun]:
    """A started bot (its token, both guilds, SQLite; a real redis-server as the queue, or
    with `embedded` the tiny model rendering in the bot) and the fake Discord on loopback.
    On a clean exit the bot is stopped once the checks are done (`exit_code`); whatever
    happens, it is killed if still running and Redis stops."""
    redis = None if embedded else RedisServer(folder / "redis")
    bot: DiscordBot | None = None
    fake: FakeDiscord | None = None
    try:
        if redis is not None:
            redis.start()
        db_url = f"sqlite+aiosqlite:///{folder / 'bot.db'}"
        await upgrade_database(db_url)  # a row worker reads the database from the start
        gateway = FakeGateway(
            TOKEN,
            user=BOT_USER,
            application_id=APP_ID,
            guilds=[guild(g, CHANNELS[g], THREADS[g]) for g in (GUILD_A, GUILD_B)],
            heartbeat_ms=heartbeat_ms,
        )
        fake = FakeDiscord(token=TOKEN, gateway=gateway)
        await fake.start()
        bot = DiscordBot(folder, db_url, "" if redis is None else redis.url, fake.api_url)
        run = DiscordRun(db_url, fake, gateway, bot)
        run.restart()
        yield run
        run.exit_code = bot.stop()
    finally:
        if bot is not None:
            bot.kill_if_running()
        if fake is not None:
            await fake.stop()
        if redis is not None:
            redis.stop()


@dataclass(frozen=True)
class JobSeen:
    """What Discord ended up showing of one job."""

    job_id: int
    status_messages: int  # posted for it (one is right)
    final_texts: list[str]  # each status message's first line now
    results: int  # messages carrying its result files (one is right)
    delivered_at: float | None  # when its last message (final edit or upload) arrived


RESULT_OF = re.compile(r"· job #(?P<job>\d+)(?!\d)")  # a result's credit line


def seen_all(fake: FakeDiscord, job_ids: list[int]) -> dict[int, JobSeen]:
    """Read the fake's record of these jobs: their status messages, their text now, their
    results. One pass over the calls for all jobs: a benchmark polls this, and a slow poll
    would starve the fake it shares a loop with."""
    status_ids: dict[int, list[str]] = {job: [] for job in job_ids}
    job_of: dict[str, int] = {}  # status message id → job
    for call in fake.where("POST", "/messages"):
        found = STATUS_LINE.match((call.json or {}).get("content") or "")
        if call.path.endswith("/messages") and found and int(found["job"]) in status_ids:
            status_ids[int(found["job"])].append(str(call.answer["id"]))
            job_of[str(call.answer["id"])] = int(found["job"])
    results = dict.fromkeys(job_ids, 0)
    for message in fake.messages.values():
        found = RESULT_OF.search(str(message.get("content")))
        if message["files"] and found and int(found["job"]) in results:
            results[int(found["job"])] += 1
    times: dict[int, float] = {}
    for call in fake.calls:
        if call.throttled or call.method not in ("POST", "PATCH") or "/messages" not in call.path:
            continue
        job = job_of.get(call.path.rsplit("/", 1)[-1])
        if job is None and (found := RESULT_OF.search(str((call.json or {}).get("content")))):
            job = int(found["job"])
        if job in results:
            times[job] = max(times.get(job, 0.0), call.at)
    return {
        job: JobSeen(
            job,
            len(status_ids[job]),
            [str(fake.messages[i].get("content", "")).split("\n")[0] for i in status_ids[job]],
            results[job],
            times.get(job),
        )
        for job in job_ids
    }


def seen(fake: FakeDiscord, job_id: int) -> JobSeen:
    """What Discord shows of one job (see `seen_all`)."""
    return seen_all(fake, [job_id])[job_id]


def outcome_shown(s: JobSeen) -> bool:
    """One status message, ending as the job's outcome, and its result."""
    return s.final_texts == [f"✅ page job #{s.job_id} done"] and s.results >= 1
