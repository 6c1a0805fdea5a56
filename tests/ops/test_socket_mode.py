"""Slack's default mode: the real `storyloom slack` process (Socket Mode) opens its websocket
through `apps.connections.open` against the loopback fake, which plays Slack's Socket Mode
server; slack_sdk's client acks every envelope within Slack's 3 s, commands are answered,
a redelivered event adds its beat once, and SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storyloom.testing.devservices import REDIS_SERVER, RedisServer
from tests.slack.conftest import fake_web_api
from tests.slack.fake_slack import FakeSlack

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
APP_TOKEN = "xapp-app-token-that-must-never-be-logged"


def _slash(fake: FakeSlack, text: str) -> dict[str, str]:
    return {
        "command": "/story", "text": text, "team_id": "T1", "channel_id": "C1",
        "user_id": "U1", "user_name": "u1", "trigger_id": f"trig-{time.monotonic_ns()}",
        "response_url": fake.base + "respond/story",
    }  # fmt: skip


def _mention(text: str, thread_ts: str, event_id: str) -> dict[str, object]:
    event = {
        "type": "app_mention", "user": "U1", "text": f"<@UBOT> {text}",
        "ts": "1700000999.000001", "channel": "C1", "thread_ts": thread_ts,
    }  # fmt: skip
    return {
        "type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event": event,
        "event_id": event_id, "event_time": int(time.time()),
    }  # fmt: skip


async def _answer(fake: FakeSlack, count: int) -> str:
    return str((await fake.wait_for("chat.postEphemeral", count, timeout=30))[-1].params["text"])


async def test_socket_mode_acks_envelopes_and_serves_commands_and_events(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    bot: subprocess.Popen[bytes] | None = None
    log = tmp_path / "slack.log"
    try:
        async with fake_web_api() as fake:
            clean = {k: v for k, v in os.environ.items() if not k.startswith("STORYLOOM_")}
            env = {
                **clean,
                "STORYLOOM_CONFIG_FILE": str(tmp_path / "none.toml"),
                "STORYLOOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
                "STORYLOOM_QUEUE": "redis",
                "STORYLOOM_REDIS_URL": redis.url,
                "STORYLOOM_SLACK_BOT_TOKEN": "xoxb-test",
                "STORYLOOM_SLACK_APP_TOKEN": APP_TOKEN,
                "STORYLOOM_SLACK_API_URL": fake.base + "api/",
                "STORYLOOM_LOG_FORMAT": "json",
            }
            bot = subprocess.Popen(
                [sys.executable, "-m", "storyloom.cli", "slack"],
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp_path,
            )
            deadline = time.monotonic() + 120
            while fake.socket is None:
                assert bot.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.05)
            opened = fake.named("apps.connections.open")
            assert opened and opened[0].token == APP_TOKEN  # the app token, not the bot's

            sent = time.monotonic()
            envelope = await fake.envelope("slash_commands", _slash(fake, "new Harbour"))
            assert await fake.acked(envelope) - sent < 3.0  # Slack's limit
            assert "started" in await _answer(fake, 1)
            anchor = str(fake.named("chat.update")[-1].params["ts"])

            for attempt in range(2):  # the same event, redelivered
                envelope = await fake.envelope(
                    "events_api",
                    _mention("add the fog lifts", anchor, "Ev0SOCKET"),
                    retry_attempt=attempt,
                    retry_reason="timeout" if attempt else "",
                )
                await fake.acked(envelope)
            await fake.wait_for("chat.postMessage", 3, timeout=30)  # anchor + two answers
            await fake.envelope("slash_commands", _slash(fake, "list"))
            assert await _answer(fake, 2) == "`  1` the fog lifts — U1\npage 1/1 · 1 beats"

            bot.send_signal(signal.SIGTERM)
            assert bot.wait(30) == 0, log.read_text()
        assert APP_TOKEN not in log.read_text()
    finally:
        if bot is not None and bot.poll() is None:
            bot.kill()
            bot.wait(10)
        redis.stop()
