"""A bot process stops cleanly on SIGTERM (exit 0, connections closed), serves /healthz
while it runs, and its JSON logs never show its tokens: `storyloom slack --http`, for
real, on loopback (it needs no Slack connection to start)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from storyloom.testing.devservices import free_port, wait_until

BOT_TOKEN = "xoxb-bot-token-that-must-never-be-logged"
SIGNING_SECRET = "signing-secret-that-must-never-be-logged"


def test_the_slack_bot_answers_healthz_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    ops_port, http_port = free_port(), free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STORYLOOM_")}
    env = {
        **clean,
        "HF_HUB_OFFLINE": "1",
        "STORYLOOM_CONFIG_FILE": str(tmp_path / "none.toml"),
        "STORYLOOM_SLACK_BOT_TOKEN": BOT_TOKEN,
        "STORYLOOM_SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "STORYLOOM_OPS_PORT": str(ops_port),
        "STORYLOOM_LOG_FORMAT": "json",
    }
    log = tmp_path / "slack.log"
    bot = subprocess.Popen(
        [sys.executable, "-m", "storyloom.cli", "slack", "--http", "--port", str(http_port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:

        def serving() -> bool:
            assert bot.poll() is None, log.read_text()
            return "serving Slack events" in log.read_text()

        wait_until(serving, 60, "the Slack bot to serve")
        with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/healthz", timeout=10) as r:
            assert r.status == 200
            assert json.loads(r.read())["role"] == "slack"
        bot.send_signal(signal.SIGTERM)
        assert bot.wait(30) == 0
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait(10)
    text = log.read_text()
    messages = [json.loads(line)["message"] for line in text.splitlines()]
    # (its default model, a hub id, cannot load offline: that is logged in the background,
    # and does not keep it from serving or stopping)
    assert messages[-1] == "slack stopped"
    assert "slack: stop signal received; shutting down" in messages
    assert BOT_TOKEN not in text and SIGNING_SECRET not in text
