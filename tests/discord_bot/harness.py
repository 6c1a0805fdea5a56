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

from .fake_discord import Call, FakeDiscord, member, thread

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


async def ask(running: Running, fake: FakeDiscord, payload: dict[str, Any]) -> str:
    """Send one interaction and return the text of the follow-up that answers it."""
    token = payload["token"]
    running.send(payload)
    [answer] = await fake.wait_for("POST", f"/webhooks/555/{token}")
    assert_deferred_first(fake, token)
    return (answer.json or {}).get("content", "")


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
