"""Slack's port answers from the first second: while the bot is being built, a signed
request is acknowledged at once and kept, and once the bolt app is handed over it gets the
kept requests, in order, and every later one directly. Real aiohttp and bolt, loopback."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from storyloom.bot.slack.app import web_client
from storyloom.bot.slack.front import EVENTS_PATH, EarlyFront
from storyloom.testing.devservices import free_port

from .conftest import fake_web_api
from .fake_slack import SECRET, Sender


def _bolt(heard: list[str], client: AsyncWebClient) -> AsyncApp:
    app = AsyncApp(client=client, signing_secret=SECRET, process_before_response=False)

    @app.command("/story")
    async def story(ack, command):  # type: ignore[no-untyped-def]
        await ack()
        heard.append(command["text"])

    return app


async def test_requests_are_acked_while_the_bot_starts_and_handled_once_it_is_up() -> None:
    port = free_port()
    front = EarlyFront(SECRET)
    await front.start(port, host="127.0.0.1")
    heard: list[str] = []
    try:
        async with fake_web_api() as fake, aiohttp.ClientSession() as http:
            fake.teams = {"xoxb-1": "T1"}
            url = f"http://127.0.0.1:{port}{EVENTS_PATH}"
            send = Sender(http, url, "http://127.0.0.1:9/respond")
            assert await send.command("help") == 200  # no bot yet: acked and kept
            assert await send.command("list") == 200
            assert await send.command("forged", secret="not-the-secret") == 401
            assert await send.command("replayed", timestamp=int(time.time()) - 600) == 401
            challenge = json.dumps({"type": "url_verification", "challenge": "c-1"})
            async with http.post(url, data=challenge, headers=_signed(challenge)) as answer:
                assert (await answer.json()) == {"challenge": "c-1"}
            assert front.kept == 2 and heard == []

            front.hand_over(_bolt(heard, web_client("xoxb-1", base_url=fake.base + "api/")))
            async with asyncio.timeout(10):
                while len(heard) < 2:
                    await asyncio.sleep(0.01)
            assert await send.command("status") == 200  # straight to bolt now
            async with asyncio.timeout(10):
                while len(heard) < 3:
                    await asyncio.sleep(0.01)
            assert await send.command("forged", secret="not-the-secret") == 401
    finally:
        await front.close()
    assert heard == ["help", "list", "status"]  # each once, in order


def _signed(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}
