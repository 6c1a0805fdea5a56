"""/story commands through the real discord.py code, against a loopback fake of Discord:
deferral, answers without pings, permissions, threads, autocomplete, the error handler."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import discord
import pytest

from storyloom.config import Settings

from .fake_discord import FakeDiscord, press, slash, text_channel
from .harness import ANN, BOB, MOD, THREAD, Running, ask, followups

TROUBLE = re.compile(
    r"✗ Something went wrong on our side \(ref (?P<ref>[0-9a-f]{8})\); "
    r"please try again in a moment\."
)


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
    assert answers[3] == "beat 1 added"
    # the beat itself is the story's: posted into the thread for everyone, defused
    [*_, posted] = await fake.wait_for("POST", f"/channels/{THREAD['id']}/messages", 2)
    beat = (posted.json or {})["content"]
    assert beat.startswith("beat 1 by Bob: ")
    assert "@\u200beveryone" in beat and "<\u200b@12" in beat
    assert "\\*\\*now\\*\\*" in beat
    for call in fake.where("POST", "/webhooks/") + fake.where("POST", "/channels/"):
        if "threads" not in call.path:
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


async def test_autocomplete_offers_the_cast_and_the_beat_numbers(
    running: Running, fake: FakeDiscord
) -> None:
    running.send(slash("new", THREAD, ANN, title="T"))
    await followups(fake, 1)
    running.send(slash("cast", THREAD, ANN, name="Mira", description="a girl"))
    await followups(fake, 2)
    running.send(slash("cast", THREAD, ANN, name="Otto", description="a dog"))
    await followups(fake, 3)
    for count, text in enumerate(("one", "two", "three"), start=4):
        running.send(slash("add", THREAD, ANN, text=text))
        await followups(fake, count)

    def typing(sub: str, option: str, value: str, **others: Any) -> dict[str, Any]:
        options: dict[str, Any] = {option: value, **others}  # the typed option comes first
        payload = slash(sub, THREAD, ANN, **options)
        payload["type"] = 4  # APPLICATION_COMMAND_AUTOCOMPLETE
        focused = payload["data"]["options"][0]["options"][0]
        focused["focused"] = True
        focused["type"] = 4 if option == "beat" else 3
        return payload

    async def offered(payload: dict[str, Any]) -> list[Any]:
        running.send(payload)
        [answer] = await fake.wait_for("POST", f"/{payload['token']}/callback")
        assert (answer.json or {})["type"] == 8  # APPLICATION_COMMAND_AUTOCOMPLETE_RESULT
        return [choice["value"] for choice in (answer.json or {})["data"]["choices"]]

    assert await offered(typing("look", "name", "mi")) == ["Mira"]
    assert await offered(typing("edit", "beat", "", text="x")) == [3, 2, 1]
    assert await offered(typing("redraw", "beat", "2")) == [2]
    assert "comic" in await offered(typing("style", "name", "COM"))


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
    said = TROUBLE.fullmatch(answers[1])
    assert said is not None, answers[1]
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    line = record.getMessage()
    assert "story add" in line and "11" in line and str(THREAD["id"]) in line
    assert f"ref {said['ref']}" in line  # the member's reference finds the log entry
    assert "disk on fire" in (record.exc_text or str(record.exc_info))
    assert "fake-bot-token" not in caplog.text


async def test_a_button_that_fails_unexpectedly_still_answers_and_is_logged(
    running: Running, fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from storyloom.story import service

    async def broken(*args: Any) -> None:
        raise RuntimeError("queue gone")

    monkeypatch.setattr(service, "cancel", broken)
    running.send(press("story:cancel:9", THREAD, ANN))
    [answer] = await followups(fake, 1)
    said = TROUBLE.fullmatch(answer)
    assert said is not None, answer
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    line = record.getMessage()
    assert "button cancel:9" in line and "member 11" in line and f"ref {said['ref']}" in line
    assert "queue gone" not in answer


async def test_error_sentences_show_the_members_own_text_literally_and_never_ping(
    running: Running, fake: FakeDiscord
) -> None:
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    style = await ask(running, fake, slash("style", THREAD, ANN, name="@everyone **big** <@12>"))
    assert style.startswith("✗ Unknown style '@\u200beveryone \\*\\*big\\*\\* <\u200b@12\\>'. ")
    name = await ask(
        running, fake, slash("cast", THREAD, ANN, name="__x__ @here", description="a girl")
    )
    assert name.endswith("\\(got '\\_\\_x\\_\\_ @\u200bhere'\\).")
    for call in fake.where("POST", "/webhooks/"):
        assert call.json is not None and call.json["allowed_mentions"]["parse"] == []


async def test_the_guide_names_every_subcommand_and_its_invite_asks_for_the_listed_permissions(
    running: Running,
) -> None:
    guide = (Path(__file__).parents[2] / "docs" / "discord.md").read_text()
    [group] = [c for c in running.bot.tree.get_commands() if c.name == "story"]
    assert isinstance(group, discord.app_commands.Group)
    for command in group.commands:
        assert re.search(rf"(/story |`){command.name}\b", guide), f"/story {command.name}"
    table = guide.split("| permission | why |")[1].split("\n\n")[0]
    named = re.findall(r"^\s*\| ([A-Z][\w ]+?) \|", table, re.MULTILINE)
    # discord.py names them in snake case, channel in the singular: view_channel
    flags = {"_".join(n.lower().split()).replace("channels", "channel"): True for n in named}
    wanted = discord.Permissions(**flags)
    assert len(named) == 6 and wanted.value.bit_count() == len(named)
    assert f"permissions={wanted.value}" in guide and f"`{wanted.value}`" in guide
    assert "scope=bot+applications.commands" in guide
    variables = set(re.findall(r"STORYLOOM_([A-Z0-9_]+)", guide))
    assert {"DISCORD_TOKEN", "QUEUE", "REDIS_URL"} <= variables
    assert {name.lower() for name in variables} <= set(Settings.model_fields)


async def test_a_channel_where_the_bot_may_not_post_gets_a_sentence_saying_what_to_fix(
    running: Running, fake: FakeDiscord
) -> None:
    fake.forbidden.add("/threads")  # the bot's role may not create threads here
    answer = await ask(running, fake, slash("new", text_channel(4242), ANN, title="Harbour"))
    assert answer == (
        "✗ I'm not allowed to do that in this channel. Ask a moderator to let me view it, "
        "send messages, create public threads and attach files."
    )
