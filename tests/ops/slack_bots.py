"""Real `storyloom slack --http` processes for the delivery tests and benchmark.

The bot is the CLI command itself, configured only through STORYLOOM_* variables: HTTP
mode with OAuth installs in two workspaces (TA, TB; their bot tokens in its database), the
fake Slack Web API on loopback (`STORYLOOM_SLACK_API_URL`), SQLite, and the distributed
queue (a real redis-server). No `storyloom worker` runs: the caller plays the workers by
writing the job rows (`RowWorker`), so a render takes as long as the caller says and the
delivery is measured alone.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import aiohttp
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import select

from storyloom.bot.slack.oauth import SlackOAuth, installation_store
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.storage.tables import RenderJobRow
from storyloom.storage.unit_of_work import session_of
from storyloom.story.model import JobStatus
from storyloom.testing.devservices import RedisServer, free_port
from tests.ops.procs import BotProcess
from tests.slack import worker_rows
from tests.slack.conftest import fake_web_api
from tests.slack.fake_slack import SECRET, FakeSlack, Sender

CLIENT = SlackOAuth("cid-123", "client-secret-that-must-never-be-logged")
TOKENS = {"TA": "xoxb-a", "TB": "xoxb-b"}
PAGE = b"\x89PNG\r\n\x1a\n" + bytes(64)


async def install(db_url: str) -> None:
    """Migrate the database and install the app in both workspaces, as OAuth would."""
    await upgrade_database(db_url)
    async with open_database(db_url) as db:
        store = installation_store(CLIENT, db.engine)
        for team, token in TOKENS.items():
            await store.async_save(
                Installation(
                    app_id="A1", team_id=team, bot_token=token, bot_id="B" + team,
                    bot_user_id="UBOT", user_id="U1", bot_scopes="chat:write",
                )
            )  # fmt: skip


@dataclass
class SlackBot(BotProcess):
    """One `storyloom slack --http` process; `start` it again after a kill."""

    command: ClassVar[str] = "slack"

    folder: Path
    db_url: str
    redis_url: str
    api_url: str
    port: int = field(default_factory=free_port)
    ops_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("STORYLOOM_")}
        return {
            **clean,
            "HF_HUB_OFFLINE": "1",
            "STORYLOOM_CONFIG_FILE": str(self.folder / "none.toml"),
            "STORYLOOM_DATABASE_URL": self.db_url,
            "STORYLOOM_QUEUE": "redis",
            "STORYLOOM_REDIS_URL": self.redis_url,
            "STORYLOOM_OUTPUT_DIR": str(self.folder / "out"),
            "STORYLOOM_SLACK_SIGNING_SECRET": SECRET,
            "STORYLOOM_SLACK_CLIENT_ID": CLIENT.client_id,
            "STORYLOOM_SLACK_CLIENT_SECRET": CLIENT.client_secret,
            "STORYLOOM_SLACK_API_URL": self.api_url,
            "STORYLOOM_OPS_PORT": str(self.ops_port),
            "STORYLOOM_LOG_FORMAT": "json",
            "STORYLOOM_MAX_WAITING_PER_MEMBER": "100",
            "STORYLOOM_MAX_WAITING_PER_WORKSPACE": "200",
        }

    def arguments(self) -> list[str]:
        return ["--http", "--port", str(self.port)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"


@dataclass
class Chat:
    """The fake Slack (what members see) and the sender of their requests to the bot."""

    fake: FakeSlack
    send: Sender


@dataclass
class SlackRun:
    """A running bot with its database, the fake Slack it talks to, and a chat on it."""

    db_url: str
    fake: FakeSlack
    chat: Chat
    bot: SlackBot
    exit_code: int | None = None  # the bot's, once it was stopped at the end


@asynccontextmanager
async def slack_bot_on_redis(folder: Path) -> AsyncIterator[SlackRun]:
    """A started bot (HTTP, OAuth in both workspaces, a real redis-server, SQLite) and the
    fake Slack Web API on loopback. On a clean exit the bot is stopped once the fake is
    gone (`exit_code`); whatever happens, it is killed if still running and Redis stops."""
    redis = RedisServer(folder / "redis")
    redis.start()
    bot: SlackBot | None = None
    try:
        db_url = f"sqlite+aiosqlite:///{folder / 'bot.db'}"
        await install(db_url)
        async with fake_web_api() as fake, aiohttp.ClientSession() as http:
            fake.teams = {token: team for team, token in TOKENS.items()}
            bot = SlackBot(folder, db_url, redis.url, fake.base + "api/")
            run = SlackRun(
                db_url, fake, Chat(fake, Sender(http, bot.url, fake.base + "respond/story")), bot
            )
            bot.start()
            yield run
        run.exit_code = bot.stop()
    finally:
        if bot is not None:
            bot.kill_if_running()
        redis.stop()


async def first_ack(
    bot: SlackBot, fake: FakeSlack, sender: Sender, timeout: float = 120.0
) -> float:
    """Seconds from now until the bot acks a signed request (a `/story help`); returns
    once its answer is there too."""
    started = time.monotonic()
    answers = len(fake.named("chat.postEphemeral"))
    while time.monotonic() - started < timeout:
        assert bot.process is not None and bot.process.poll() is None, bot.logs()
        with suppress(aiohttp.ClientError):
            if await sender.command("help", team="TA") == 200:
                acked = time.monotonic() - started
                await fake.wait_for("chat.postEphemeral", answers + 1, timeout=timeout)
                return acked
        await asyncio.sleep(0.02)
    raise AssertionError(f"the bot never acked:\n{bot.logs()}")


@dataclass
class RowWorker:
    """Plays the render workers: each queued job runs `render_s`, then is done with a page.
    Records when each job was done (monotonic seconds)."""

    db: SqlDatabase
    out: Path
    render_s: float = 0.1
    done_at: dict[int, float] = field(default_factory=dict)

    async def run(self) -> None:
        while True:
            async with self.db.reading() as uow:
                query = select(RenderJobRow.id).where(RenderJobRow.status == JobStatus.QUEUED.value)
                waiting = list((await session_of(uow).scalars(query)).all())
            for job_id in waiting:
                await worker_rows.start(self.db, job_id)
                await asyncio.sleep(self.render_s)
                await worker_rows.finish(self.db, self.out, job_id, {"story-page-01.png": PAGE})
                self.done_at[job_id] = time.monotonic()
            await asyncio.sleep(0.05)


@asynccontextmanager
async def row_worker(db_url: str, out: Path, render_s: float) -> AsyncIterator[RowWorker]:
    async with open_database(db_url) as db:
        worker = RowWorker(db, out, render_s)
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


@dataclass(frozen=True)
class JobSeen:
    """What Slack ended up showing of one job."""

    job_id: int
    status_messages: int  # posted for it (one is right)
    final_texts: list[str]  # each status message's text now
    results: int  # result uploads naming it in the channel (one is right)
    delivered_at: float | None  # when its last message (final edit or upload) arrived


def seen(fake: FakeSlack, job_id: int, channel: str = "C1") -> JobSeen:
    """Read the fake's record of a job: its status messages, their text now, its results."""
    status_ts = [
        str(c.answer["ts"])
        for c in fake.named("chat.postMessage")
        if f" job #{job_id} queued" in str(c.params.get("text")) and c.params["channel"] == channel
    ]
    kept = fake.messages.get(channel, {})
    texts = [str(kept[ts]["text"]) for ts in status_ts if ts in kept]
    marker = f"· job #{job_id}"
    results = [m for m in kept.values() if m.get("files") and m["text"].endswith(marker)]
    times = [
        c.at
        for c in fake.calls
        if (c.method == "chat.update" and c.params.get("ts") in status_ts)
        or (
            c.method == "files.completeUploadExternal"
            and str(c.params.get("initial_comment", "")).endswith(marker)
        )
    ]
    return JobSeen(job_id, len(status_ts), texts, len(results), max(times, default=None))
