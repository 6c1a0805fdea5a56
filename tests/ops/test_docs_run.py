"""Docs that run: every command block in docs/*.md is executed by a test exactly as written
(comments and all), or carries a `<!-- not run: REASON -->` line naming one of the few
reasons below. A block not run still parses, names no `<placeholder>` (bash reads one as a
redirect), and names only storyloom commands, compose services and image stages that exist."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from storyloom.cli import app
from tests.discord_bot.fake_discord import (
    APP_ID,
    BOT_USER,
    FakeDiscord,
    guild,
    member,
    slash,
    text_channel,
    thread,
)
from tests.discord_bot.fake_gateway import FakeGateway
from tests.ops.deployfiles import ROOT
from tests.slack.conftest import fake_web_api
from tests.slack.fake_slack import FakeSlack

SHELLS = {"sh", "bash", "shell", "console"}
# why a block may go unrun, and why that is acceptable (keep this list short)
NOT_RUN = {
    "network": "downloads from outside PyPI and Debian (CUDA torch, model weights): CI cannot",
    "docker": "needs Docker with the NVIDIA toolkit; the image and compose files are checked "
    "by tests/ops/test_deploy_files.py",
}
NOTE = re.compile(r"<!-- not run: (?P<reason>[a-z]+) -->")
PLACEHOLDER = re.compile(r"(?<![<\w])<[a-z][a-z ]*>")


@dataclass(frozen=True)
class Block:
    """A fenced shell block of a doc, as a reader would paste it (indentation removed)."""

    doc: str
    info: str
    body: str
    reason: str | None  # from the `<!-- not run: … -->` line just above it

    @property
    def name(self) -> str:
        return f"{self.doc}:{self.body.splitlines()[0][:40]}"


def blocks() -> list[Block]:
    """Every fenced block with a shell info string in docs/*.md."""
    found = []
    for path in sorted((ROOT / "docs").glob("*.md")):
        lines = path.read_text().splitlines(keepends=True)
        at = 0
        while at < len(lines):
            line = lines[at]
            stripped = line.lstrip()
            if not stripped.startswith("```"):
                at += 1
                continue
            indent = len(line) - len(stripped)
            info = stripped[3:].strip()
            end = next(i for i in range(at + 1, len(lines)) if lines[i].strip() == "```")
            body = "".join(text[indent:] for text in lines[at + 1 : end])
            above = lines[at - 1].strip() if at else ""
            note = NOTE.fullmatch(above)
            if info in SHELLS:
                reason = note["reason"] if note else None
                found.append(Block(f"docs/{path.name}", info, body, reason))
            at = end + 1
    return found


def run_by_tests(block: Block) -> bool:
    """The blocks a test below runs as written."""
    return slack_run_block(block) or discord_run_block(block)


def slack_run_block(block: Block) -> bool:
    return block.doc == "docs/slack.md" and block.body.strip().endswith("storyloom slack")


def discord_run_block(block: Block) -> bool:
    return block.doc == "docs/discord.md" and "storyloom discord --sync-guild" in block.body


def test_every_command_block_is_run_or_says_why_not() -> None:
    found = blocks()
    assert len(found) >= 6
    for block in found:
        if run_by_tests(block):
            assert block.reason is None, f"{block.name} is run: drop its not-run line"
            continue
        assert block.reason in NOT_RUN, f"{block.name}: run it, or say why not ({NOT_RUN})"


@pytest.mark.parametrize("block", [b for b in blocks() if b.reason], ids=lambda b: b.name)
def test_a_block_not_run_still_parses_and_names_what_exists(block: Block) -> None:
    checked = subprocess.run(["bash", "-n"], input=block.body, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    assert not PLACEHOLDER.search(block.body), f"{block.name}: bash reads <…> as a redirect"
    runner = CliRunner()
    for command in re.findall(r"(?:^|/)storyloom ([a-z][\w-]*)", block.body, re.M):
        assert runner.invoke(app, [command, "--help"]).exit_code == 0, command
    services = set(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"])
    for service in re.findall(
        r"docker compose (?:run --rm (?:--entrypoint \w+ )?|logs -f )(\w+)", block.body
    ):
        assert service in services, f"{block.name}: no compose service {service}"
    for scaled in re.findall(r"--scale (\w+)=", block.body):
        assert scaled in services
    stages = set(re.findall(r"^FROM \S+ AS (\w+)", (ROOT / "Dockerfile").read_text(), re.M))
    for stage in re.findall(r"--target (\w+)", block.body):
        assert stage in stages, f"{block.name}: no Dockerfile stage {stage}"


def _slash(fake: FakeSlack, text: str) -> dict[str, str]:
    return {
        "command": "/story", "text": text, "team_id": "T1", "channel_id": "C1",
        "user_id": "U1", "user_name": "u1", "trigger_id": f"trig-{time.monotonic_ns()}",
        "response_url": fake.base + "respond/story",
    }  # fmt: skip


@pytest.mark.timeout(240)
async def test_the_slack_run_block_starts_the_bot_as_written(tmp_path: Path) -> None:
    """docs/slack.md step 4 pasted into a shell, Slack being the loopback fake; step 5's
    `/story new The Lighthouse` is answered; SIGTERM stops it cleanly."""
    [block] = [b for b in blocks() if slack_run_block(b)]
    log = tmp_path / "slack.log"
    async with fake_web_api() as fake:
        # the loopback Slack's install issued the tokens the doc shows (step 3)
        fake.teams["xoxb-…"] = "T1"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("STORYLOOM_")}
        env = {
            **clean,
            "HF_HUB_OFFLINE": "1",
            # the block as written; only where Slack is and how big a render is are the test's
            "STORYLOOM_CONFIG_FILE": str(tmp_path / "none.toml"),
            "STORYLOOM_SLACK_API_URL": fake.base + "api/",
            "STORYLOOM_MODEL": "tiny-sdxl",
            "STORYLOOM_MODEL_CACHE_DIR": str(tmp_path / "models"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        shell = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", block.body],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the shell and the bot: one group to stop
        )
        try:
            deadline = time.monotonic() + 180
            while fake.socket is None:
                assert shell.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.05)
            await fake.envelope("slash_commands", _slash(fake, "new The Lighthouse"))
            try:
                answered = await fake.wait_for("chat.postEphemeral", timeout=60)
            except AssertionError as error:
                raise AssertionError(log.read_text()[-3000:]) from error
            assert "started" in str(answered[-1].params["text"])
            os.killpg(shell.pid, signal.SIGTERM)
            code = await asyncio.to_thread(shell.wait, 60)
        finally:
            if shell.poll() is None:
                os.killpg(shell.pid, signal.SIGKILL)
                shell.wait(10)
    text = log.read_text()
    assert code in (0, -signal.SIGTERM), text  # the shell itself may take the signal
    assert "slack stopped" in text  # the bot's own clean stop
    assert "Traceback" not in text and "Unclosed" not in text
    assert "xoxb-…" not in text and "xapp-…" not in text  # the tokens are never logged


@pytest.mark.timeout(240)
async def test_the_discord_run_block_starts_the_bot_as_written(tmp_path: Path) -> None:
    """docs/discord.md step 2 pasted into a shell, Discord being the loopback fake (its REST
    API and gateway): the commands are synced to the server the block names, `/story new`
    in a thread there is answered; SIGTERM stops it cleanly."""
    [block] = [b for b in blocks() if discord_run_block(b)]
    server = int(re.findall(r"SERVER_ID=(\d+)", block.body)[0])
    token = re.findall(r"STORYLOOM_DISCORD_TOKEN=(\S+)", block.body)[0]
    story_thread = thread(3001, guild_id=server)
    where = guild(server, text_channel(4242, server), story_thread)
    gateway = FakeGateway(token, user=BOT_USER, application_id=APP_ID, guilds=[where])
    fake = FakeDiscord(token=token, gateway=gateway)
    await fake.start()
    log = tmp_path / "discord.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STORYLOOM_")}
    env = {
        **clean,
        "HF_HUB_OFFLINE": "1",
        # the block as written; only where Discord is and how big a render is are the test's
        "STORYLOOM_CONFIG_FILE": str(tmp_path / "none.toml"),
        "STORYLOOM_DISCORD_API_URL": fake.api_url,
        "STORYLOOM_MODEL": "tiny-sdxl",
        "STORYLOOM_MODEL_CACHE_DIR": str(tmp_path / "models"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    shell = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", block.body],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the shell and the bot: one group to stop
    )
    try:
        try:
            await gateway.connected(timeout=180)
            await fake.wait_for("PUT", f"/applications/{APP_ID}/guilds/{server}/commands", 1, 180)
            assert "story" in [c["name"] for c in fake.synced]
            new = slash("new", story_thread, member(11, "Ann"), title="The Lighthouse")
            await gateway.dispatch("INTERACTION_CREATE", new)
            [answer] = await fake.wait_for("POST", f"/webhooks/{APP_ID}/{new['token']}", 1, 60)
        except AssertionError as error:
            raise AssertionError(log.read_text()[-3000:]) from error
        assert "Lighthouse" in str((answer.json or {}).get("content")), answer.json
        os.killpg(shell.pid, signal.SIGTERM)
        code = await asyncio.to_thread(shell.wait, 60)
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait(10)
        await fake.stop()
    text = log.read_text()
    assert code in (0, -signal.SIGTERM), text  # the shell itself may take the signal
    assert "discord stopped" in text  # the bot's own clean stop
    assert "Traceback" not in text and "Unclosed" not in text
    assert not fake.refusals(), fake.refusals()
