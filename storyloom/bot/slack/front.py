"""Slack's port, open from the process's first second (`storyloom slack --http`).

Building the bot takes seconds (SQLAlchemy, Alembic, slack-bolt, the story service; the
renderer loads later still), and Slack gives a request 3 s to be acknowledged. So the port
is opened first, with nothing heavier than aiohttp behind it: until the bolt app is handed
over (`hand_over`), a request whose signature holds is acknowledged at once (200, empty, as
our listeners acknowledge) and kept; once the app is there, the kept requests are
dispatched to it in order (their answers go through `response_url` and the Web API, as
always) and every later request goes straight to bolt. Renders asked for meanwhile wait in
line like any other.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_AGE_S = 300  # Slack's rule: a request signed longer ago than this is refused (replays)
PAGE_WAIT_S = 30.0  # an install page asked for while the bot is built waits this long for it

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EarlyFront:
    """The HTTP side of a Slack bot, serving before the bot is built."""

    def __init__(self, signing_secret: str, path: str = EVENTS_PATH) -> None:
        self.path = path
        self._secret = signing_secret.encode()
        self._post: Handler | None = None  # bolt's handlers, once handed over
        self._get: Handler | None = None
        self._kept: list[tuple[str, str, dict[str, str | Sequence[str]]]] = []
        self._built = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._replay: asyncio.Task[None] | None = None

    async def start(self, port: int, host: str = "0.0.0.0") -> None:
        """Open the port."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()

    async def close(self) -> None:
        """Close the port (what is kept and not yet dispatched is dropped)."""
        if self._replay is not None:
            self._replay.cancel()
            await asyncio.wait([self._replay])
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def kept(self) -> int:
        """Requests acknowledged before the bot was built and not dispatched yet."""
        return len(self._kept)

    def hand_over(self, app: AsyncApp) -> None:
        """The bot is built: dispatch the kept requests to `app`, then serve through it."""
        from slack_bolt.app.async_server import AsyncSlackAppServer

        server = AsyncSlackAppServer(port=0, path=self.path, app=app)
        self._post, self._get = server.handle_post_requests, server.handle_get_requests
        self._replay = asyncio.create_task(self._dispatch_kept(app), name="storyloom-kept")
        self._built.set()

    async def _dispatch_kept(self, app: AsyncApp) -> None:
        from slack_bolt.request.async_request import AsyncBoltRequest

        if self._kept:
            log.info("dispatching %d requests acknowledged while the bot started", self.kept)
        while self._kept:
            body, query, headers = self._kept.pop(0)
            try:  # the acknowledgement was sent already: bolt's answer to it is dropped
                await app.async_dispatch(AsyncBoltRequest(body=body, query=query, headers=headers))
            except Exception:
                log.exception("a request acknowledged while the bot started failed")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST" and request.path == self.path:
            if self._post is not None:
                return await self._post(request)
            return await self._keep(request)
        if request.method == "GET":  # the OAuth install pages: bolt's, once it is there
            try:
                await asyncio.wait_for(self._built.wait(), PAGE_WAIT_S)
            except TimeoutError:
                return web.Response(status=503, text="starting; try again in a moment")
            assert self._get is not None
            return await self._get(request)
        return web.Response(status=404)

    async def _keep(self, request: web.Request) -> web.Response:
        """Before the bot is built: check the signature, acknowledge, keep for later."""
        body = await request.text()
        if not self._signed(body, request.headers):
            return web.Response(status=401)
        if body.startswith("{"):  # the Events API's URL check wants its challenge back
            payload = json.loads(body)
            if payload.get("type") == "url_verification":
                return web.json_response({"challenge": payload.get("challenge")})
        headers: dict[str, str | Sequence[str]] = dict(request.headers)
        self._kept.append((body, request.query_string, headers))
        return web.Response(status=200)

    def _signed(self, body: str, headers: Mapping[str, str]) -> bool:
        """Slack's request signature (HMAC-SHA256 of `v0:timestamp:body` with the signing
        secret), checked here without slack_sdk: importing it would delay the port."""
        stamp = headers.get("X-Slack-Request-Timestamp", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_AGE_S:
            return False
        base = f"v0:{stamp}:{body}".encode()
        expected = "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, headers.get("X-Slack-Signature", ""))
