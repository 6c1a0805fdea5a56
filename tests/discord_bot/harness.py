"""What the Discord tests share: members, a thread, a bot process, and waiting for answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyloom.bot.discord.bot import StoryBot
from storyloom.bot.discord.run import story_bot
from storyloom.config import load_settings
from storyloom.generation.renderer import StoryRenderer
from storyloom.jobs.runtime import JobRuntime
from storyloom.storage import SqlDatabase

from .fake_discord import Call, FakeDiscord, member, thread

ANN = member(11, "Ann")
BOB = member(12, "Bob")
MOD = member(13, "Mo", permissions=1 << 34)  # manage_threads
THREAD = thread(3001)


@dataclass
class Running:
    bot: StoryBot

    @property
    def jobs(self) -> JobRuntime:
        assert self.bot.jobs is not None
        return self.bot.jobs

    def send(self, payload: dict[str, Any]) -> None:
        self.bot._connection.parse_interaction_create(payload)  # type: ignore[arg-type]


@asynccontextmanager
async def started(
    db: SqlDatabase, load_renderer: Callable[[], StoryRenderer], out: Path
) -> AsyncIterator[Running]:
    """A bot process as `storyloom discord` composes it (embedded queue), logged in to the
    fake; leaving it stops the process: the render in hand goes back to the line."""
    settings = load_settings(output_dir=out, queue="embedded")
    async with story_bot(settings, db, load_renderer=load_renderer, watch_every_s=0.05) as bot:
        await bot.login("fake-bot-token")
        try:
            yield Running(bot)
        finally:
            await bot.close()


async def followups(fake: FakeDiscord, count: int) -> list[str]:
    """The contents of the first `count` interaction follow-ups, once they arrived."""
    calls = await fake.wait_for("POST", "/webhooks/555/", count)
    return [(c.json or {}).get("content", "") for c in calls]


async def ask(running: Running, fake: FakeDiscord, payload: dict[str, Any]) -> str:
    """Send one interaction and return the text of the follow-up that answers it."""
    token = payload["token"]
    running.send(payload)
    [answer] = await fake.wait_for("POST", f"/webhooks/555/{token}")
    assert_deferred_first(fake, token)
    content = (answer.json or {}).get("content", "")
    # answers (confirmations, refusals) are the member's own: the story is posted apart
    assert answer.private, f"shown to everyone: {content!r}"
    return content


def assert_deferred_first(fake: FakeDiscord, token: str) -> None:
    """The interaction was acknowledged (deferred) before anything else answered it."""
    about = [c for c in fake.calls if token in c.path]
    assert about, f"no call for interaction {token}"
    first = about[0]
    assert first.path.endswith("/callback"), f"answered before deferring: {first.path}"
    assert first.json is not None and first.json["type"] in (5, 6)  # deferred


def buttons(call: Call) -> list[str]:
    """The custom ids of the buttons a sent or edited message carries, row by row."""
    rows = (call.json or {}).get("components", [])
    return [button["custom_id"] for row in rows for button in row["components"]]
