"""/story settings and /story audit through the real discord.py code over the loopback fake:
moderators see and change their own server's settings, members cannot, a moderator of one
server cannot touch another; refused text is answered privately and stored nowhere."""

from __future__ import annotations

import copy
from typing import Any

from storyloom.storage import SqlDatabase

from .fake_discord import FakeDiscord, slash, text_channel
from .harness import ANN, BOB, MOD, THREAD, Running, ask

OTHER_GUILD = "990001"


def in_other_guild(payload: dict[str, Any]) -> dict[str, Any]:
    """The same interaction, sent from another server."""
    moved = copy.deepcopy(payload)
    moved["guild_id"] = OTHER_GUILD
    moved["channel"]["guild_id"] = OTHER_GUILD
    return moved


async def answer_flags(fake: FakeDiscord, payload: dict[str, Any]) -> int:
    [call] = fake.where("POST", f"/webhooks/555/{payload['token']}")
    return int((call.json or {}).get("flags", 0))


async def stored_changes(db: SqlDatabase, guild: str) -> dict[str, Any]:
    async with db.reading() as uow:
        return await uow.servers.changes(guild)


async def test_moderators_see_and_change_settings_privately_and_members_cannot(
    running: Running, fake: FakeDiscord, db: SqlDatabase
) -> None:
    guild = str(THREAD["guild_id"])
    refused = await ask(running, fake, slash("settings", THREAD, ANN))
    assert refused == "✗ Only this server's moderators can see its settings."
    change = slash("settings", THREAD, ANN, setting="safety", value="off")
    assert (await ask(running, fake, change)).startswith("✗ Only this server's moderators")
    assert await stored_changes(db, guild) == {}

    shown = await ask(running, fake, view := slash("settings", THREAD, MOD))
    assert "safety: block" in shown.splitlines() and "who\\-renders: everyone" in shown
    assert await answer_flags(fake, view) & 64  # ephemeral: only the moderator sees it
    changed = slash("settings", THREAD, MOD, setting="safety", value="blur")
    assert await ask(running, fake, changed) == "safety set to blur"
    bad = await ask(running, fake, slash("settings", THREAD, MOD, setting="max-panels", value="0"))
    assert bad == "✗ max\\-panels is a whole number from 1 to 300."
    assert await stored_changes(db, guild) == {"safety": "blur"}


async def test_a_moderator_of_another_server_changes_only_that_server(
    running: Running, fake: FakeDiscord, db: SqlDatabase
) -> None:
    guild = str(THREAD["guild_id"])
    elsewhere = in_other_guild(slash("settings", THREAD, MOD, setting="who-renders",
                                     value="moderators"))  # fmt: skip
    assert await ask(running, fake, elsewhere) == "who-renders set to moderators"
    assert await stored_changes(db, OTHER_GUILD) == {"who_renders": "moderators"}
    assert await stored_changes(db, guild) == {}
    # here, members still render
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    await ask(running, fake, slash("add", THREAD, ANN, text="a beach"))
    assert (await ask(running, fake, slash("render", THREAD, ANN))).endswith("queued")


async def test_who_renders_and_refused_text_reach_members_with_one_short_sentence(
    running: Running, fake: FakeDiscord
) -> None:
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    refused = await ask(running, fake, add := slash("add", THREAD, BOB, text="she is n4k3d"))
    assert refused == "✗ That text can't be used here: it matches this server's word list."
    assert await answer_flags(fake, add) & 64
    await ask(running, fake, slash("add", THREAD, ANN, text="a beach"))
    listed = await ask(running, fake, slash("list", THREAD, BOB))
    assert "n4k3d" not in listed and "1 beats" in listed

    await ask(running, fake, slash("settings", THREAD, MOD, setting="who-renders",
                                   value="moderators"))  # fmt: skip
    no = await ask(running, fake, slash("render", THREAD, ANN))
    assert no == "✗ On this server only moderators can render."


async def test_moderators_read_the_audit_trail_and_members_cannot(
    running: Running, fake: FakeDiscord
) -> None:
    await ask(running, fake, slash("new", THREAD, ANN, title="Lighthouse"))
    await ask(running, fake, slash("add", THREAD, BOB, text="a beach"))
    await ask(running, fake, slash("add", THREAD, BOB, text="F.U.C.K the rain"))
    await ask(running, fake, slash("remove", THREAD, MOD, beat=1))
    no = await ask(running, fake, slash("audit", THREAD, ANN))
    assert no == "✗ Only this server's moderators can read its audit trail."
    trail = (await ask(running, fake, slash("audit", THREAD, MOD, count=10))).splitlines()
    actions = [line.split(" · ")[2].split(":")[0] for line in trail]
    assert actions == ["beat.removed", "safety.text\\_refused", "beat.added", "story.created"]
    assert "F.U.C.K" not in "\n".join(trail)  # the refused text is kept nowhere
    assert "Mo" in trail[0] and "Bob" in trail[1]


async def test_a_refused_title_opens_no_thread(running: Running, fake: FakeDiscord) -> None:
    refused = await ask(running, fake, slash("new", text_channel(4242), ANN, title="N.S.F.W club"))
    assert refused.startswith("✗ That text can't be used here")
    assert fake.where("POST", "/channels/4242/threads") == []  # the title named nothing
