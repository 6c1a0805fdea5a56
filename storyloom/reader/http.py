"""The reader's routes on the operations server: GET /s/{token} and the files it shows.

Every answer carries the reader's security headers. A malformed, unknown or revoked token,
a story since deleted, and a file number out of range all get the same 404, so a link
tells nothing about whether a story exists. The token is looked up for every request
(requests arriving while a lookup of the same token is in flight share it), so a revoked
link is dead at once. A story's content is reloaded in the background once it is
`content_ttl_s` old (readers get the loaded content meanwhile, never wait for a reload).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from storyloom.config import Settings
from storyloom.reader.page import content_security_policy, render_page
from storyloom.reader.rate_limit import RateLimit
from storyloom.reader.shared_view import shared_view
from storyloom.reader.source import (
    StoredFile,
    StoryContent,
    load_content,
    local_path,
    stored_bytes,
)
from storyloom.storage.share_links import share_links
from storyloom.story.ports import Database
from storyloom.story.sharing import LinksOf, token_hash, well_formed

log = logging.getLogger(__name__)

PREFIX = "/s/"
NOT_FOUND_HTML = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Not found</title>"
    "<p>This link does not exist or was revoked.</p></html>"
)
TYPES = {".png": "image/png", ".mp4": "video/mp4"}
IDLE_S = 300.0  # a story's content unread this long is dropped from the cache


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",  # the token must not travel in a Referer
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",  # a revoked link shows nothing, even from a cache
        "X-Robots-Tag": "noindex, nofollow",
        "Cross-Origin-Resource-Policy": "same-origin",
    }


def _failed(future: asyncio.Future[StoryContent | None]) -> bool:
    return future.done() and (future.cancelled() or future.exception() is not None)


@dataclass
class _Cached:
    """A story's loaded content, when it is due to be reloaded, and when it was last read."""

    loaded: asyncio.Future[StoryContent | None]
    fresh_until: float
    read_at: float = 0.0

    def replace(self, reloaded: asyncio.Future[StoryContent | None]) -> None:
        """Take a background reload's result (a failed one keeps the old content)."""
        if _failed(reloaded):
            error = None if reloaded.cancelled() else reloaded.exception()
            log.warning("reader: a story's reload failed: %s", type(error).__name__)
        else:
            self.loaded = reloaded


def _not_found() -> web.Response:
    return web.Response(status=404, text=NOT_FOUND_HTML, content_type="text/html")


async def _no_icon(_request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"Cache-Control": "max-age=86400"})


class Reader:
    """Serves shared stories from the database and the chat side's output folder."""

    def __init__(
        self,
        db: Database,
        links_of: LinksOf,
        out_dir: Path,
        limit: RateLimit,
        *,
        content_ttl_s: float = 2.0,
    ) -> None:
        self._db = db
        self._links_of = links_of
        self._out_dir = out_dir
        self._limit = limit
        self._ttl = content_ttl_s
        self._cache: dict[int, _Cached] = {}
        self._lookups: dict[str, asyncio.Future[int | None]] = {}
        self._pages: dict[tuple[int, str], tuple[StoryContent, bytes]] = {}
        self._headers = _headers()

    def add_routes(self, app: web.Application) -> None:
        """Mount the reader on `app` (with its rate limit and headers)."""
        app.middlewares.append(self._guard)
        app.router.add_get(PREFIX + "{token}", self._page)
        app.router.add_get(PREFIX + "{token}/page/{number:[0-9]{1,4}}", self._page_file)
        app.router.add_get(
            PREFIX + "{token}/sheet/{character:[0-9]{1,12}}/{number:[0-9]{1,4}}", self._sheet
        )
        app.router.add_get(PREFIX + "{token}/clip", self._clip)
        # browsers ask every origin for an icon; answer "none" rather than a 404 they log
        app.router.add_get("/favicon.ico", _no_icon)

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(PREFIX):
            return await handler(request)
        wait = self._limit.take(request.remote or "?")
        if wait:
            response: web.StreamResponse = web.Response(
                status=429, text="Too many requests; try again shortly.",
                headers={"Retry-After": str(max(1, math.ceil(min(wait, 3600))))},
            )  # fmt: skip
        else:
            try:
                response = await handler(request)
            except web.HTTPNotFound:  # an unmatched /s/ path: the same 404 as a bad token
                response = _not_found()
            except web.HTTPException as error:  # a wrong method: answered, with our headers
                response = web.Response(status=error.status, text=error.reason)
        response.headers.update(self._headers)
        return response

    async def _story_id(self, token: str) -> int | None:
        """The live link's story. Lookups of one token that arrive while one is in flight
        share its answer (a crowd opening one link costs one query); nothing is kept after
        it, so a revoked link is dead for every request that arrives after the revoke."""
        if not well_formed(token):
            return None
        key = token_hash(token)
        future = self._lookups.get(key)
        if future is None:
            future = asyncio.ensure_future(self._look_up(key))
            self._lookups[key] = future
            future.add_done_callback(lambda done: self._forget_lookup(key, done))
        return await asyncio.shield(future)

    async def _look_up(self, key: str) -> int | None:
        async with self._db.reading() as uow:
            return await self._links_of(uow).story_of(key)

    def _forget_lookup(self, key: str, done: asyncio.Future[int | None]) -> None:
        if self._lookups.get(key) is done:
            del self._lookups[key]

    async def _content(self, token: str) -> StoryContent | None:
        story_id = await self._story_id(token)
        if story_id is None:
            return None
        now = time.monotonic()
        cached = self._cache.get(story_id)
        if cached is None or _failed(cached.loaded):
            # one load per story at a time: a crowd of readers shares it
            self._forget_idle(now)
            cached = self._cache[story_id] = _Cached(self._load(story_id), now + self._ttl)
        elif cached.fresh_until < now and cached.loaded.done():
            # stale: reload in the background and serve what is loaded meanwhile, so no
            # reader waits for a reload (the link itself was checked just above)
            cached.fresh_until = now + self._ttl
            self._load(story_id).add_done_callback(lambda done: cached.replace(done))
        cached.read_at = now
        return await asyncio.shield(cached.loaded)

    def _load(self, story_id: int) -> asyncio.Future[StoryContent | None]:
        return asyncio.ensure_future(load_content(self._db, story_id))

    def _forget_idle(self, now: float) -> None:
        for story_id in [k for k, c in self._cache.items() if c.read_at < now - IDLE_S]:
            del self._cache[story_id]
        for key in [k for k in self._pages if k[0] not in self._cache]:
            del self._pages[key]

    async def _page(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        content = await self._content(token)
        if content is None:
            return _not_found()
        # the page is drawn once per link and cached content, not per reader
        key = (content.story.id, token)
        drawn = self._pages.get(key)
        if drawn is None or drawn[0] is not content:
            # relative addresses (TOKEN/page/1 from /s/TOKEN): they hold behind a proxy that
            # serves the reader under a path of its own (STORYLOOM_PUBLIC_BASE_URL's path)
            html = render_page(shared_view(content, token)).encode("utf-8")
            drawn = self._pages[key] = (content, html)
        return web.Response(body=drawn[1], content_type="text/html", charset="utf-8")

    async def _file(self, stored: StoredFile | None) -> web.StreamResponse:
        if stored is None:
            return _not_found()
        content_type = TYPES[Path(stored.name).suffix]
        path = local_path(self._out_dir, stored)
        if await asyncio.to_thread(path.is_file):
            # sent by the kernel, with Range support (a clip can be sought in)
            return web.FileResponse(path, headers={"Content-Type": content_type})
        data = await stored_bytes(self._db, stored)
        if data is None:
            log.warning("reader: job %d's file %s is gone", stored.job_id, stored.name)
            return _not_found()
        return web.Response(body=data, content_type=content_type)

    async def _page_file(self, request: web.Request) -> web.StreamResponse:
        content = await self._content(request.match_info["token"])
        number = int(request.match_info["number"])
        pages = content.pages if content else ()
        return await self._file(pages[number - 1] if 1 <= number <= len(pages) else None)

    async def _sheet(self, request: web.Request) -> web.StreamResponse:
        content = await self._content(request.match_info["token"])
        character_id = int(request.match_info["character"])
        number = int(request.match_info["number"])
        sheets = next(
            (files for c, files in (content.cast if content else ()) if c.id == character_id), ()
        )
        return await self._file(sheets[number - 1] if 1 <= number <= len(sheets) else None)

    async def _clip(self, request: web.Request) -> web.StreamResponse:
        content = await self._content(request.match_info["token"])
        return await self._file(content.clip if content else None)


def reader_for(settings: Settings, db: Database) -> Reader:
    """The reader as the settings configure it."""
    limit = RateLimit(settings.reader_requests_per_minute, settings.reader_burst)
    return Reader(db, share_links, settings.output_dir, limit)
