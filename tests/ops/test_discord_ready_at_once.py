"""Ready at once, on Discord: the real `storyloom discord` process (embedded queue, the tiny
model) acknowledges interactions as soon as its gateway connection is up, while the rest
of it is still being built and its renderer loads; /healthz says not ready until both are
done; a render asked for meanwhile waits in line and is delivered once it is."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

import pytest

from tests.discord_bot.fake_discord import slash

from .discord_bots import ANN, GUILD_A, THREADS, outcome_shown, running_discord_bot, seen


def _ready(ops_port: int) -> bool | None:
    """What /healthz says of `ready`; None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/healthz", timeout=5) as r:
            return bool(json.loads(r.read())["ready"])
    except OSError:  # not serving yet, or 503 while not ready
        return None


@pytest.mark.timeout(600)
async def test_the_discord_bot_acks_while_it_is_built_and_renders_once_it_is(
    tmp_path: Path,
) -> None:
    async with running_discord_bot(tmp_path, embedded=True) as run:
        bot, fake, thread = run.bot, run.fake, THREADS[GUILD_A]
        await run.first_ack(slash("list", thread, ANN), timeout=180)
        # acknowledged and answered; the renderer (the tiny model, built on first use)
        # still loads: not ready
        assert _ready(bot.ops_port) is not True, bot.logs()
        await run.ask(slash("new", thread, ANN, title="Lighthouse"))
        assert "beat 1" in await run.ask(slash("add", thread, ANN, text="a lighthouse at dusk"))
        assert await run.ask(slash("render", thread, ANN)) == "page job #1 queued"
        deadline = time.monotonic() + 300
        while not _ready(bot.ops_port):  # the renderer loads; the render waits in line
            assert bot.process is not None and bot.process.poll() is None, bot.logs()
            assert time.monotonic() < deadline, bot.logs()[-3000:]
            await asyncio.sleep(0.2)
        while not outcome_shown(shown := seen(fake, 1)):
            assert time.monotonic() < deadline, (shown, bot.logs()[-3000:])
            await asyncio.sleep(0.2)
        assert shown.status_messages == 1 and shown.results == 1
        assert not fake.refusals(), fake.refusals()
    assert run.exit_code == 0, bot.logs()[-3000:]
