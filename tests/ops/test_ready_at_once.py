"""Ready at once: the real `storyloom slack --http` process (embedded queue, the tiny model)
acks requests while its renderer still loads in the background, /healthz says it is not
ready until the renderer is loaded, and a render asked for meanwhile waits in line and is
delivered once it is."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp

from storyloom.testing.devservices import free_port
from tests.slack.conftest import fake_web_api
from tests.slack.fake_slack import SECRET, FakeSlack, Sender
from tests.slack.helpers import command, new_story


def _ready(ops_port: int) -> bool | None:
    """What /healthz says of `ready`; None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/healthz", timeout=5) as r:
            return bool(json.loads(r.read())["ready"])
    except OSError:
        return None


class Chat:
    def __init__(self, fake: FakeSlack, send: Sender) -> None:
        self.fake, self.send = fake, send


async def test_the_bot_acks_while_its_renderer_loads_and_renders_once_it_has(
    tmp_path: Path,
) -> None:
    port, ops_port = free_port(), free_port()
    async with fake_web_api() as fake, aiohttp.ClientSession() as http:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("STORYLOOM_")}
        env = {
            **clean,
            "HF_HUB_OFFLINE": "1",
            "STORYLOOM_CONFIG_FILE": str(tmp_path / "none.toml"),
            "STORYLOOM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
            "STORYLOOM_MODEL": "tiny-sdxl",
            "STORYLOOM_MODEL_CACHE_DIR": str(tmp_path / "models"),
            "STORYLOOM_DEVICE": "cpu",
            "STORYLOOM_OUTPUT_DIR": str(tmp_path / "out"),
            "STORYLOOM_STORE_DIR": str(tmp_path / "stores"),
            "STORYLOOM_SLACK_BOT_TOKEN": "xoxb-test",
            "STORYLOOM_SLACK_SIGNING_SECRET": SECRET,
            "STORYLOOM_SLACK_API_URL": fake.base + "api/",
            "STORYLOOM_OPS_PORT": str(ops_port),
        }
        log = tmp_path / "slack.log"
        bot = subprocess.Popen(
            [sys.executable, "-m", "storyloom.cli", "slack", "--http", "--port", str(port)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
        chat = Chat(fake, Sender(http, f"http://127.0.0.1:{port}/slack/events", fake.base))
        try:
            deadline = time.monotonic() + 120
            while True:  # the first ack
                assert bot.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                try:
                    if await chat.send.command("help") == 200:
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            # acking, not yet rendering: /healthz says not ready, or does not answer yet (the
            # Slack port opens before the ops server's imports); either is "not ready"
            assert _ready(ops_port) is not True, log.read_text()
            await fake.wait_for("chat.postEphemeral", 1, timeout=30)
            await new_story(chat)
            await command(chat, "add a lighthouse at dusk")
            assert await command(chat, "render") == "page job #1 queued"
            while not _ready(ops_port):  # the renderer loads; the render waits in line
                assert bot.poll() is None, log.read_text()
                assert time.monotonic() < deadline + 120, log.read_text()
                await asyncio.sleep(0.2)
            while not [m for m in fake.messages["C1"].values() if m.get("files")]:
                assert bot.poll() is None, log.read_text()
                assert time.monotonic() < deadline + 300, log.read_text()
                await asyncio.sleep(0.2)
            status = [
                c.answer["ts"]
                for c in fake.named("chat.postMessage")
                if "job #1 queued" in str(c.params.get("text"))
            ]
            assert [fake.messages["C1"][ts]["text"] for ts in status] == ["✅ page job #1 done"]
        finally:
            bot.terminate()
            try:
                bot.wait(60)
            except subprocess.TimeoutExpired:
                bot.kill()
                bot.wait(10)
