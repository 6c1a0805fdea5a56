"""What the Discord tests share: members, a thread, a bot process, and waiting for answers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyloom.bot.discord.bot import StoryBot
from storyloom.generation.renderer import StoryRenderer
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import positions
from storyloom.jobs.local import LocalWorker
from storyloom.storage import SqlDatabase
from storyloom.story.service import Deps, utc_now

from .fake_discord import FakeDiscord, member, thread

ANN = member(11, "Ann")
BOB = member(12, "Bob")
MOD = member(13, "Mo", permissions=1 << 34)  # manage_threads
THREAD = thread(3001)


@dataclass
class Running:
    bot: StoryBot
    worker: LocalWorker

    def send(self, payload: dict[str, Any]) -> None:
        self.bot._connection.parse_interaction_create(payload)  # type: ignore[arg-type]


async def start_bot(db: SqlDatabase, renderer: StoryRenderer, out: Path) -> Running:
    """A bot process: the real client logs in against the fake, with its own worker."""
    bot = StoryBot(application_id=555)
    worker = LocalWorker(db, lambda: renderer, out, bot.notifier)
    bot.deps = Deps(db, worker, STYLE_NAMES, "comic")
    bot.notifier.places = lambda: positions(db, utc_now())  # as run_discord wires it
    await bot.login("fake-bot-token")
    return Running(bot, worker)


async def followups(fake: FakeDiscord, count: int) -> list[str]:
    """The contents of the first `count` interaction follow-ups, once they arrived."""
    calls = await fake.wait_for("POST", "/webhooks/555/", count)
    return [(c.json or {}).get("content", "") for c in calls]
