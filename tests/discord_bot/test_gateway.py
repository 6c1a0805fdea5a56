"""The gateway fake speaks Discord's protocol and refuses what Discord refuses; the real
discord.py client connects, resumes after a drop, and (started lazily, as `storyloom
discord` starts) acknowledges interactions before the bot is built, then answers them in
order once it is."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path

import aiohttp
import discord
import pytest
from discord.gateway import DiscordWebSocket

from storyloom.bot.discord.bot import StoryBot
from storyloom.bot.discord.early import EarlyInteractions
from storyloom.bot.discord.run import story_bot
from storyloom.bot.discord.start import use_named_gateway
from storyloom.config import load_settings
from storyloom.generation.renderer import StoryRenderer
from storyloom.storage import SqlDatabase

from .fake_discord import (
    APP_ID,
    BOT_USER,
    GUILD_ID,
    FakeDiscord,
    guild,
    press,
    slash,
    text_channel,
)
from .fake_gateway import FakeGateway
from .harness import ANN, MOD, THREAD

TOKEN = "gateway-test-token"


@pytest.fixture
async def world() -> AsyncIterator[FakeDiscord]:
    """The fake Discord with its gateway; discord.py pointed at both as the bot points it."""
    gateway = FakeGateway(
        TOKEN,
        user=BOT_USER,
        application_id=APP_ID,
        guilds=[guild(GUILD_ID, text_channel(4242), THREAD)],
        heartbeat_ms=500,
        grace_s=5.0,  # a loaded machine may beat late; Discord is lenient too
    )
    server = FakeDiscord(token=TOKEN, gateway=gateway)
    await server.start()
    base, default = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = server.api_url
    try:
        yield server
    finally:
        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, default
        await server.stop()


async def _raw(server: FakeDiscord, query: str) -> aiohttp.ClientWebSocketResponse:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(f"ws://127.0.0.1:{server.port}/gateway?{query}")
    ws._test_session = session  # type: ignore[attr-defined]  # closed with the socket
    return ws


async def _closed_with(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10) -> int | None:
    try:
        while not ws.closed:
            message = await ws.receive(timeout=timeout)
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
        return ws.close_code
    finally:
        await ws.close()
        await ws._test_session.close()  # type: ignore[attr-defined]


def _identify(token: str) -> str:
    properties = {"os": "linux", "browser": "t", "device": "t"}
    return json.dumps({"op": 2, "d": {"token": token, "properties": properties, "intents": 1}})


async def test_a_wrong_token_is_closed_with_4004(world: FakeDiscord) -> None:
    ws = await _raw(world, "v=10&encoding=json")
    hello = json.loads((await ws.receive(timeout=10)).data)
    assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 500
    await ws.send_str(_identify("not-the-token"))
    assert await _closed_with(ws) == 4004


async def test_an_unknown_api_version_is_closed_with_4012(world: FakeDiscord) -> None:
    assert await _closed_with(await _raw(world, "v=6&encoding=json")) == 4012


async def test_a_payload_before_identify_is_closed_with_4003(world: FakeDiscord) -> None:
    ws = await _raw(world, "v=10&encoding=json")
    await ws.receive(timeout=10)  # HELLO
    await ws.send_str(json.dumps({"op": 3, "d": {"status": "online"}}))
    assert await _closed_with(ws) == 4003


async def test_a_client_that_stops_beating_is_closed_with_4009(world: FakeDiscord) -> None:
    ws = await _raw(world, "v=10&encoding=json")
    await ws.receive(timeout=10)  # HELLO
    await ws.send_str(_identify(TOKEN))
    ready = json.loads((await ws.receive(timeout=10)).data)
    assert ready["t"] == "READY" and ready["s"] == 1
    assert ready["d"]["guilds"] == [{"id": str(GUILD_ID), "unavailable": True}]
    # no heartbeat: closed once the interval and its grace passed
    assert await _closed_with(ws, timeout=30) == 4009
    assert world.gateway is not None and world.gateway.closes == [4009]


@pytest.fixture
async def connected(world: FakeDiscord) -> AsyncIterator[StoryBot]:
    """A lazily started bot (as `storyloom discord` starts), logged in and connected through
    the gateway the REST API names, its features not built."""
    bot = StoryBot(lazy=True)
    bot.early = EarlyInteractions(bot)  # type: ignore[attr-defined]
    await bot.login(TOKEN)
    await use_named_gateway(bot)
    connection = asyncio.create_task(bot.connect())
    assert world.gateway is not None
    await world.gateway.connected()
    await asyncio.wait_for(bot.wait_until_ready(), 30)
    try:
        yield bot
    finally:
        await bot.close()
        with suppress(Exception):
            await asyncio.wait_for(connection, 30)


async def test_the_bot_sees_its_guild_and_resumes_after_a_drop(
    world: FakeDiscord, connected: StoryBot
) -> None:
    gateway = world.gateway
    assert gateway is not None
    assert connected.get_guild(GUILD_ID) is not None  # GUILD_CREATE after READY
    assert connected.get_channel(int(THREAD["id"])) is not None
    session = gateway.live
    await gateway.drop()  # a network blip: discord.py resumes the same session
    while gateway.resumes == 0:
        await asyncio.sleep(0.02)
    assert gateway.live is session and gateway.identifies == 1
    assert session is not None and session.events[-1]["t"] == "RESUMED"
    beats = gateway.beats
    while gateway.beats < beats + 2:  # beats go on over the resumed connection
        await asyncio.sleep(0.05)
    assert gateway.closes == [] and not connected.is_closed()


async def test_interactions_before_the_bot_is_built_are_deferred_at_once_and_answered_in_order(
    world: FakeDiscord,
    connected: StoryBot,
    db: SqlDatabase,
    renderer: StoryRenderer,
    tmp_path: Path,
) -> None:
    gateway = world.gateway
    assert gateway is not None
    new = slash("new", THREAD, ANN, title="Lighthouse")
    add = slash("add", THREAD, ANN, text="a lighthouse at dusk")  # needs the story first
    again = press("story:again:-", THREAD, ANN)  # "render again" (needs a beat)
    typing = slash("render", THREAD, ANN, first=1)  # an option being typed: autocomplete
    typing["type"] = 4
    typing["data"]["options"][0]["options"][0]["focused"] = True
    audit = slash("audit", THREAD, MOD)  # a command of another extension (server_cog)
    for payload in (new, add, again, typing, audit):
        await gateway.dispatch("INTERACTION_CREATE", payload)
    acks = [
        (await world.wait_for("POST", f"/interactions/{p['id']}/", timeout=30))[0].json
        for p in (new, add, again, typing, audit)
    ]
    # each as its handler would acknowledge it, with nothing built yet: commands privately,
    # a press as an update of its message, an autocomplete with no suggestions yet
    private = {"type": 5, "data": {"flags": 64}}
    no_choices = {"type": 8, "data": {"choices": []}}
    assert acks == [private, private, {"type": 6}, no_choices, private]
    assert not world.where("POST", "/webhooks/")  # no handler ran: none is loaded
    settings = load_settings(output_dir=tmp_path / "out", queue="embedded")
    async with story_bot(settings, db, bot=connected, load_renderer=lambda: renderer):
        await connected.load_features()
        await connected.early.hand_over()  # type: ignore[attr-defined]
        answers = [
            (await world.wait_for("POST", f"/webhooks/555/{p['token']}", timeout=60))[0]
            for p in (new, add, again, audit)
        ]
        assert "beat 1" in str((answers[1].json or {}).get("content"))  # in order
        assert (answers[2].json or {}).get("content") == "page job #1 queued"
        assert not str((answers[3].json or {}).get("content")).startswith("✗"), answers[3].json
        assert not world.where("POST", f"/webhooks/555/{typing['token']}")  # answered already
        assert all(a.private for a in answers)  # the deferral's visibility: private
        assert not world.acknowledged_twice and not world.refusals()
        later = slash("add", THREAD, ANN, text="the lamp turns")  # discord.py's own path now
        await gateway.dispatch("INTERACTION_CREATE", later)
        [answer] = await world.wait_for("POST", f"/webhooks/555/{later['token']}", timeout=60)
        assert "beat 2" in str((answer.json or {}).get("content"))


async def test_a_resume_of_a_session_the_gateway_forgot_is_refused_and_it_identifies_anew(
    world: FakeDiscord, connected: StoryBot
) -> None:
    gateway = world.gateway
    assert gateway is not None
    gateway.sessions.clear()  # as after Discord restarted: the session is gone
    await gateway.drop()
    while gateway.identifies < 2:  # op 9 (not resumable): discord.py identifies again
        await asyncio.sleep(0.02)
    assert gateway.resumes == 0 and gateway.invalidated == 1  # it tried, and was refused
    await asyncio.wait_for(connected.wait_until_ready(), 30)
    assert connected.get_guild(GUILD_ID) is not None  # the new session's GUILD_CREATE
