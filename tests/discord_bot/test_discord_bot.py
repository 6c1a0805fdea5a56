"""The Discord bot through the real discord.py code, against a loopback fake of Discord."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest

from storyloom.bot.discord.bot import StoryBot
from storyloom.generation.models import load_pipeline
from storyloom.generation.renderer import RenderSettings, StoryRenderer
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import positions
from storyloom.jobs.local import LocalWorker
from storyloom.storage import SqlDatabase, open_database, upgrade_database
from storyloom.story.service import Deps, utc_now

from .fake_discord import FakeDiscord, member, press, slash, text_channel, thread

ANN = member(11, "Ann")
BOB = member(12, "Bob")
MOD = member(13, "Mo", permissions=1 << 34)  # manage_threads
THREAD = thread(3001)


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> StoryRenderer:
    loaded = load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))
    return StoryRenderer(loaded, RenderSettings(width=64, height=64, steps=2), None)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    original = discord.http.Route.BASE
    discord.http.Route.BASE = f"http://127.0.0.1:{server.port}/api/v10"
    try:
        yield server
    finally:
        discord.http.Route.BASE = original
        await server.stop()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'discord.db'}"
    await upgrade_database(url)
    async with open_database(url) as database:
        yield database


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


@pytest.fixture
async def running(
    fake: FakeDiscord, db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> AsyncIterator[Running]:
    bot = await start_bot(db, renderer, tmp_path / "out")
    try:
        yield bot
    finally:
        await bot.bot.close()


async def followups(fake: FakeDiscord, count: int) -> list[str]:
    calls = await fake.wait_for("POST", "/webhooks/555/", count)
    return [(c.json or {}).get("content", "") for c in calls]


async def test_every_command_defers_first_and_answers_without_pings(
    running: Running, fake: FakeDiscord
) -> None:
    running.send(slash("new", THREAD, ANN, title="Lighthouse"))
    [answer] = await followups(fake, 1)
    assert "new story **Lighthouse**" in answer
    callback = fake.where("POST", "/interactions/")[0]
    assert callback.json is not None and callback.json["type"] == 5  # deferred
    assert fake.calls.index(callback) < fake.calls.index(fake.where("POST", "/webhooks/")[0])

    running.send(slash("add", THREAD, ANN, text="@everyone look at [Mira] <@12> **now**"))
    answers = await followups(fake, 2)
    assert answers[1].startswith("✗") and "Mira" in answers[1]  # Mira is not cast yet
    running.send(slash("cast", THREAD, ANN, name="Mira", description="a girl"))
    await followups(fake, 3)
    running.send(slash("add", THREAD, BOB, text="@everyone look at [Mira] <@12> **now**"))
    answers = await followups(fake, 4)
    assert "beat 1:" in answers[3]
    assert "@\u200beveryone" in answers[3] and "<\u200b@12" in answers[3]
    assert "\\*\\*now\\*\\*" in answers[3]
    for call in fake.where("POST", "/webhooks/"):
        assert call.json is not None and call.json["allowed_mentions"]["parse"] == []


async def test_a_member_cannot_edit_another_members_beat_but_a_moderator_can(
    running: Running, fake: FakeDiscord
) -> None:
    running.send(slash("new", THREAD, ANN, title="T"))
    await followups(fake, 1)
    running.send(slash("add", THREAD, ANN, text="ann's beat"))
    await followups(fake, 2)
    running.send(slash("edit", THREAD, BOB, beat=1, text="bob was here"))
    answers = await followups(fake, 3)
    assert answers[2].startswith("✗") and "Ann" in answers[2]
    running.send(slash("list", THREAD, BOB))
    answers = await followups(fake, 4)
    assert "ann's beat" in answers[3] and "bob was here" not in answers[3]
    running.send(slash("edit", THREAD, MOD, beat=1, text="tidied"))
    answers = await followups(fake, 5)
    assert "beat 1 edited" in answers[4]


async def test_new_in_a_text_channel_opens_a_thread_for_the_story(
    running: Running, fake: FakeDiscord
) -> None:
    running.send(slash("new", text_channel(4242), ANN, title="Harbour"))
    [answer] = await followups(fake, 1)
    [created] = fake.where("POST", "/channels/4242/threads")
    assert created.json is not None and created.json["name"] == "Harbour"
    assert "new story in <#" in answer
    intro = await fake.wait_for("POST", "/messages")
    assert "Harbour" in (intro[0].json or {}).get("content", "")


async def test_render_edits_one_status_message_and_uploads_the_page(
    running: Running, fake: FakeDiscord
) -> None:
    task = asyncio.create_task(running.worker.run())
    try:
        running.send(slash("new", THREAD, ANN, title="Lighthouse"))
        await followups(fake, 1)
        running.send(slash("cast", THREAD, ANN, name="Mira", description="a girl"))
        await followups(fake, 2)
        running.send(slash("add", THREAD, ANN, text='[Mira] waves # Mira: "Hi!"'))
        await followups(fake, 3)
        running.send(slash("add", THREAD, MOD, text="[Mira] sleeps"))
        await followups(fake, 4)
        running.send(slash("render", THREAD, BOB))
        answers = await followups(fake, 5)
        assert "page job #1 queued" in answers[4]
        await asyncio.wait_for(running.worker.drain(), 120)
        await fake.wait_for("POST", f"/channels/{THREAD['id']}/messages", 2)
    finally:
        task.cancel()
    status, result = fake.where("POST", f"/channels/{THREAD['id']}/messages")
    assert "queued" in (status.json or {})["content"]
    edits = [(c.json or {})["content"] for c in fake.where("PATCH", "/messages/")]
    assert any("running" in e for e in edits) and "done" in edits[-1]
    names = [name for name, _ in result.files]
    assert names[0] == "story-page-01.png" and "story.pdf" in names
    assert "for Bob" in (result.json or {})["content"]
    assert "beats by Ann, Mo" in (result.json or {})["content"]  # the credits
    assert (result.json or {})["allowed_mentions"]["parse"] == []


async def test_a_button_pressed_after_a_restart_still_works(
    fake: FakeDiscord, db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    first = await start_bot(db, renderer, tmp_path / "out")
    first.send(slash("new", THREAD, ANN, title="T"))
    await followups(fake, 1)
    first.send(slash("add", THREAD, ANN, text="a beach"))
    await followups(fake, 2)
    first.send(slash("render", THREAD, ANN))
    await followups(fake, 3)
    [status] = fake.where("POST", f"/channels/{THREAD['id']}/messages")
    components = (status.json or {})["components"][0]["components"]
    cancel_id = components[0]["custom_id"]
    assert cancel_id == "story:cancel:1"
    await first.bot.close()

    # a new process: nothing in memory but the database and the custom_id
    second = await start_bot(db, renderer, tmp_path / "out")
    try:
        second.send(press(cancel_id, THREAD, BOB))  # Bob did not ask for it
        refused = await followups(fake, 4)
        assert refused[3].startswith("✗ Only whoever asked")
        second.send(press(cancel_id, THREAD, ANN))
        done = await followups(fake, 5)
        assert done[4] == "job #1 cancelled"
    finally:
        await second.bot.close()


async def test_an_attachment_over_the_upload_limit_is_never_sent(
    running: Running, fake: FakeDiscord, db: SqlDatabase, tmp_path: Path
) -> None:
    from storyloom.bot.discord.posting import Tracked
    from storyloom.jobs.local import JobEvent
    from storyloom.story.model import JobStatus
    from storyloom.story.service import utc_now

    running.send(slash("new", THREAD, ANN, title="T"))
    await followups(fake, 1)
    running.send(slash("add", THREAD, ANN, text="a beach"))
    await followups(fake, 2)
    running.send(slash("render", THREAD, ANN))
    await followups(fake, 3)
    async with db.writing() as uow:  # as if the worker had finished it
        await uow.jobs.set_status(1, JobStatus.DONE, utc_now())
        job = await uow.jobs.find(1)
    assert job is not None

    big, small = tmp_path / "story.zip", tmp_path / "story-page-01.png"
    big.write_bytes(b"x" * 5000)
    small.write_bytes(b"y" * 100)
    running.bot.notifier.track(1, Tracked(int(THREAD["id"]), 123, "T", upload_limit=1000))
    await running.bot.notifier(JobEvent(job, JobStatus.DONE, (small, big)))
    [post] = [c for c in fake.where("POST", f"/channels/{THREAD['id']}/messages") if c.files]
    assert [name for name, _ in post.files] == ["story-page-01.png"]
    content = (post.json or {})["content"]
    assert "story.zip" in content and "over this channel" in content
    assert all(size <= 1000 for _, size in post.files)


async def test_a_result_finished_while_the_bot_was_down_is_posted_once_after_restart(
    fake: FakeDiscord, db: SqlDatabase, renderer: StoryRenderer, tmp_path: Path
) -> None:
    from storyloom.bot.discord.posting import post_pending
    from storyloom.jobs.local import JobEvent

    first = await start_bot(db, renderer, tmp_path / "out")
    first.send(slash("new", THREAD, ANN, title="Night @everyone"))
    await followups(fake, 1)
    first.send(slash("add", THREAD, ANN, text="a beach"))
    await followups(fake, 2)
    first.send(slash("render", THREAD, ANN))
    await followups(fake, 3)
    await first.bot.close()

    # the worker finishes while no bot process is there to post
    async def nobody_listens(event: JobEvent) -> None:
        return None

    offline = LocalWorker(db, lambda: renderer, tmp_path / "out", nobody_listens)
    await offline.process(1)

    second = await start_bot(db, renderer, tmp_path / "out")
    try:
        assert await post_pending(second.bot.notifier, db, tmp_path / "out") == 1
        assert await post_pending(second.bot.notifier, db, tmp_path / "out") == 0
    finally:
        await second.bot.close()
    uploads = [c for c in fake.where("POST", f"/channels/{THREAD['id']}/messages") if c.files]
    [post] = uploads
    assert "story-page-01.png" in [name for name, _ in post.files]
    assert "@\u200beveryone" in (post.json or {})["content"]
    assert (post.json or {})["allowed_mentions"]["parse"] == []


async def test_autocomplete_offers_the_cast_and_the_beat_numbers(
    running: Running, fake: FakeDiscord
) -> None:
    running.send(slash("new", THREAD, ANN, title="T"))
    await followups(fake, 1)
    running.send(slash("cast", THREAD, ANN, name="Mira", description="a girl"))
    await followups(fake, 2)
    running.send(slash("cast", THREAD, ANN, name="Otto", description="a dog"))
    await followups(fake, 3)
    await followups(fake, 3)
    for count, text in enumerate(("one", "two", "three"), start=4):
        running.send(slash("add", THREAD, ANN, text=text))
        await followups(fake, count)

    def typing(sub: str, option: str, value: str, **others: Any) -> dict[str, Any]:
        payload = slash(sub, THREAD, ANN, **{option: value}, **others)
        payload["type"] = 4  # APPLICATION_COMMAND_AUTOCOMPLETE
        focused = payload["data"]["options"][0]["options"][0]
        focused["focused"] = True
        focused["type"] = 4 if option == "beat" else 3
        return payload

    running.send(typing("look", "name", "mi"))
    running.send(typing("edit", "beat", "", text="x"))
    answers = await fake.wait_for("POST", "/callback", 6 + 2)
    offered = [(c.json or {})["data"]["choices"] for c in answers if (c.json or {})["type"] == 8]
    assert [{"name": "Mira", "value": "Mira"}] in offered
    assert [[choice["value"] for choice in choices] for choices in offered][1] == [3, 2, 1]
    running.send(typing("style", "name", "COM"))
    answers = await fake.wait_for("POST", "/callback", 6 + 3)
    styles = (answers[-1].json or {})["data"]["choices"]
    assert {"name": "comic", "value": "comic"} in styles


async def test_every_subcommand_and_option_is_described(running: Running) -> None:
    [group] = [c for c in running.bot.tree.get_commands() if c.name == "story"]
    assert isinstance(group, discord.app_commands.Group)
    names = {c.name for c in group.commands}
    assert names >= {"new", "add", "edit", "remove", "move", "undo", "list", "cast", "look"}
    assert names >= {"style", "render", "clip", "status", "cancel", "export", "delete"}
    for command in group.commands:
        assert isinstance(command, discord.app_commands.Command)
        for option in command.parameters:
            assert option.description != "…", f"/story {command.name} {option.name}"


async def test_an_unexpected_failure_gets_one_sentence_and_a_log_line_with_who_and_where(
    running: Running, fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from storyloom.story import service

    async def broken(*args: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service, "add_beat", broken)
    running.send(slash("new", THREAD, ANN, title="T"))
    await followups(fake, 1)
    running.send(slash("add", THREAD, ANN, text="a beach"))
    answers = await followups(fake, 2)
    assert answers[1] == "✗ Something went wrong on our side; please try again in a moment."
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    line = record.getMessage()
    assert "story add" in line and "11" in line and str(THREAD["id"]) in line
    assert "disk on fire" in (record.exc_text or str(record.exc_info))
    assert "fake-bot-token" not in caplog.text


async def test_a_character_sheet_gets_lock_and_try_another_buttons_for_allowed_members(
    running: Running, fake: FakeDiscord
) -> None:
    task = asyncio.create_task(running.worker.run())
    try:
        running.send(slash("new", THREAD, ANN, title="T"))
        await followups(fake, 1)
        running.send(slash("cast", THREAD, ANN, name="Mira", description="a girl"))
        await followups(fake, 2)
        running.send(slash("look", THREAD, ANN, name="Mira"))
        answers = await followups(fake, 3)
        assert "sheet job #1 queued" in answers[2]
        await asyncio.wait_for(running.worker.drain(), 120)
        posts = await fake.wait_for("POST", f"/channels/{THREAD['id']}/messages", 2)
    finally:
        task.cancel()
    status, sheet = posts[:2]
    [cancel] = (status.json or {})["components"][0]["components"]
    assert cancel["custom_id"] == "story:cancel:1"  # a sheet can be cancelled while it renders
    assert sheet.files
    ids = [b["custom_id"] for b in (sheet.json or {})["components"][0]["components"]]
    assert ids == ["story:lock:Mira", "story:reroll:Mira"]

    running.send(press("story:lock:Mira", THREAD, ANN))
    answers = await followups(fake, 4)
    assert answers[3] == "Mira's look is locked"
    running.send(press("story:reroll:Mira", THREAD, BOB))  # Bob did not cast Mira
    answers = await followups(fake, 5)
    assert answers[4].startswith("✗") and "locked" in answers[4]


async def test_a_button_that_fails_unexpectedly_still_answers_and_is_logged(
    running: Running, fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from storyloom.story import service

    async def broken(*args: Any) -> None:
        raise RuntimeError("queue gone")

    monkeypatch.setattr(service, "cancel", broken)
    running.send(press("story:cancel:9", THREAD, ANN))
    [answer] = await followups(fake, 1)
    assert answer == "✗ Something went wrong on our side; please try again in a moment."
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "button cancel:9 by 11" in record.getMessage()


async def test_the_status_message_shows_the_place_in_line_and_moves_up(
    running: Running, fake: FakeDiscord
) -> None:
    running.send(slash("new", THREAD, ANN, title="T"))
    await followups(fake, 1)
    running.send(slash("add", THREAD, ANN, text="a beach"))
    await followups(fake, 2)
    running.send(slash("render", THREAD, ANN))
    await followups(fake, 3)
    running.send(slash("render", THREAD, BOB))
    await followups(fake, 4)
    first, second = fake.where("POST", f"/channels/{THREAD['id']}/messages")
    assert (first.json or {})["content"].endswith("queued — next in line")
    assert (second.json or {})["content"].endswith("queued — 2 in line, 1 ahead")

    await running.worker.process(1)
    edits = [(c.path, (c.json or {})["content"]) for c in fake.where("PATCH", "/messages/")]
    moved_up = [text for path, text in edits if "job #2" in text]
    assert moved_up == ["⏳ page job #2 queued — next in line"]
    assert any("job #1 done" in text for _, text in edits)
