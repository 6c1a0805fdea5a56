"""A loopback fake of the parts of Discord's REST API the bot uses, recording every call."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .fake_gateway import FakeGateway

APP_ID = 555
GUILD_ID = 777
BOT_USER = {
    "id": "1000",
    "username": "storyloom",
    "discriminator": "0",
    "avatar": None,
    "bot": True,
    "global_name": None,
}


@dataclass
class Call:
    method: str
    path: str
    json: dict[str, Any] | None
    files: list[tuple[str, int]]  # (filename, size) of multipart uploads
    uploads: list[tuple[str, bytes]] = field(default_factory=list)  # (filename, contents)
    answer: Any = None  # what the fake answered (a posted message carries its new id)
    # an interaction follow-up: whether Discord would show it only to the member who asked
    # (the first follow-up after a deferral takes the deferral's visibility, DESIGN §5)
    private: bool | None = None
    refused: str | None = None  # why the fake answered 400, as Discord's error says
    throttled: bool = False  # answered 429: it did not happen
    at: float = 0.0  # when it arrived (monotonic seconds)


# Discord's limits on what one message may carry (the API answers 400 / 50035 otherwise)
MAX_CONTENT = 2000
MAX_ROWS = 5
PER_ROW = 5
MAX_CUSTOM_ID = 100
MAX_LABEL = 80
MAX_ATTACHMENTS = 10
MAX_CHOICES = 25
MAX_CHOICE_NAME = 100
MAX_THREAD_NAME = 100
MAX_DESCRIPTION = 1024  # an attachment's alt text
EPHEMERAL = 1 << 6
STORY_POST = re.compile(r"beat \d+ by |📖 ")
PREVIEW = "preview.jpg"  # a status message's progress preview, not a result


MAX_COMMANDS = 100  # per application, globally and per guild
COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")  # lowercase where the script has case
MAX_COMMAND_DESCRIPTION = 100
MAX_OPTIONS = 25


def command_refusal(commands: Any) -> str:
    """Why Discord would refuse this bulk overwrite of application commands ("" if not)."""
    if not isinstance(commands, list):
        return "commands: must be a list"
    if len(commands) > MAX_COMMANDS:
        return f"commands: must be {MAX_COMMANDS} or fewer in length"
    pending = list(commands)
    while pending:
        command = pending.pop()
        name = str(command.get("name", ""))
        if not COMMAND_NAME.match(name) or name != name.lower():
            return f"name: invalid command name {name!r}"
        if len(str(command.get("description", ""))) > MAX_COMMAND_DESCRIPTION:
            return f"description: must be {MAX_COMMAND_DESCRIPTION} or fewer in length"
        options = command.get("options") or []
        if len(options) > MAX_OPTIONS:
            return f"options: must be {MAX_OPTIONS} or fewer in length"
        pending += [o for o in options if o.get("type") in (1, 2)]  # sub-commands, groups
    return ""


def refusal(body: Any, files: list[tuple[str, int]], upload_limit: int) -> str:
    """Why Discord would refuse this message body ("" if it would take it)."""
    if isinstance(body, list):  # only the bulk overwrite of commands sends a list
        return command_refusal(body)
    body = body or {}
    data = body.get("data") if isinstance(body.get("data"), dict) else body
    content = data.get("content") or ""
    if len(content) > MAX_CONTENT:
        return f"content: must be {MAX_CONTENT} or fewer in length ({len(content)})"
    rows = data.get("components") or []
    if len(rows) > MAX_ROWS:
        return f"components: must be {MAX_ROWS} or fewer in length ({len(rows)})"
    for row in rows:
        items = row.get("components", [])
        if len(items) > PER_ROW:
            return f"components.components: must be {PER_ROW} or fewer in length ({len(items)})"
        for item in items:
            if len(item.get("custom_id", "")) > MAX_CUSTOM_ID:
                return f"custom_id: must be {MAX_CUSTOM_ID} or fewer in length"
            if len(item.get("label") or "") > MAX_LABEL:
                return f"label: must be {MAX_LABEL} or fewer in length"
    if len(files) > MAX_ATTACHMENTS or len(data.get("attachments") or []) > MAX_ATTACHMENTS:
        return f"attachments: must be {MAX_ATTACHMENTS} or fewer in length"
    for attachment in data.get("attachments") or []:
        if len(attachment.get("description") or "") > MAX_DESCRIPTION:
            return f"attachments.description: must be {MAX_DESCRIPTION} or fewer in length"
    if sum(size for _, size in files) > upload_limit:
        return "Request entity too large"
    choices = data.get("choices") or []
    if len(choices) > MAX_CHOICES:
        return f"choices: must be {MAX_CHOICES} or fewer in length"
    if any(len(c.get("name", "")) > MAX_CHOICE_NAME for c in choices):
        return f"choices.name: must be {MAX_CHOICE_NAME} or fewer in length"
    if len(body.get("name") or "") > MAX_THREAD_NAME:
        return f"name: must be {MAX_THREAD_NAME} or fewer in length"
    return ""


@dataclass
class FakeDiscord:
    calls: list[Call] = field(default_factory=list)
    ids: Any = field(default_factory=lambda: itertools.count(50_000))
    port: int = 0
    upload_limit: int = 25 * 1024 * 1024  # the most any channel takes; tests may lower it
    deferred: dict[str, bool] = field(default_factory=dict)  # token → deferred privately
    forbidden: set[str] = field(default_factory=set)  # path fragments answered 403 / 50013
    deleted: set[str] = field(default_factory=set)  # message ids answered 404 / 10008
    posted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by channel
    # files members attached, served as Discord's CDN serves them (path → bytes)
    cdn: dict[str, bytes] = field(default_factory=dict)
    # the bot token REST calls must carry (`Authorization: Bot …`); None: not checked
    token: str | None = None
    gateway: FakeGateway | None = None  # served at /gateway, named by GET /gateway/bot
    # channels whose every third call is answered 429 (Discord's per-route rate limit)
    throttled: set[str] = field(default_factory=set)
    retry_after_s: float = 1.0
    # calls made while a 429's retry_after had not passed yet (Discord refuses those too)
    too_early: list[Call] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)  # interactions answered once
    acknowledged_twice: list[str] = field(default_factory=list)  # answered 40060
    synced: list[dict[str, Any]] = field(default_factory=list)  # the commands registered
    # every message as it reads now (message id → content and result files)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    _counts: dict[tuple[str, str], int] = field(default_factory=dict)
    _blocked: dict[tuple[str, str], float] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    def attachment(self, filename: str, data: bytes, content_type: str) -> dict[str, Any]:
        """A member's attachment as an interaction resolves it, its bytes on the fake CDN."""
        number = next(self.ids)
        path = f"/attachments/{GUILD_ID}/{number}/{filename}"
        self.cdn[path] = data
        url = f"http://127.0.0.1:{self.port}{path}"
        return {"id": str(number), "filename": filename, "size": len(data), "url": url,
                "proxy_url": url, "content_type": content_type}  # fmt: skip

    def message(self, channel_id: str, content: str | None) -> dict[str, Any]:
        return {
            "id": str(next(self.ids)),
            "channel_id": channel_id,
            "content": content or "",
            "author": BOT_USER,
            "attachments": [],
            "embeds": [],
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "mention_everyone": False,
            "tts": False,
            "timestamp": "2026-11-24T00:00:00+00:00",
            "edited_timestamp": None,
            "flags": 0,
            "components": [],
            "type": 0,
        }

    async def handle(self, request: web.Request) -> web.Response:
        if request.method == "GET" and request.path.startswith("/attachments/"):
            self.calls.append(Call("GET", request.path, None, []))
            if request.path not in self.cdn:
                return web.Response(status=404)
            return web.Response(body=self.cdn[request.path])
        body: Any = None  # a JSON object, or a list (the commands to register)
        uploads: list[tuple[str, bytes]] = []
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()  # type: ignore[union-attr]
                if part.name == "payload_json":  # type: ignore[union-attr]
                    body = json.loads(data)
                else:
                    uploads.append((part.filename or "", data))  # type: ignore[union-attr]
        elif request.can_read_body:
            body = await request.json()
        path = request.path.removeprefix("/api/v10")
        files = [(name, len(data)) for name, data in uploads]
        parts = path.strip("/").split("/")
        # interaction callbacks and follow-ups go by the interaction's token instead
        open_path = parts[0] in ("interactions", "webhooks")
        signed = request.headers.get("Authorization") == f"Bot {self.token}"
        if self.token is not None and not open_path and not signed:
            error = {"code": 0, "message": "401: Unauthorized"}
            self.calls.append(Call(request.method, path, body, files, uploads, error))
            return json_response(401, error)
        if parts[0] == "channels" and parts[1] in self.throttled:
            limited = self.rate_limit(request.method, parts[1])
            if limited is not None:
                call = Call(request.method, path, body, files, uploads, None, throttled=True)
                call.at = time.monotonic()
                self.calls.append(call)
                if limited[1]:
                    self.too_early.append(call)
                return limited[0]
        if parts[0] == "interactions" and parts[-1] == "callback":
            if parts[1] in self.acknowledged:
                # Discord's answer, which the bot takes as "acknowledged already" (a repeated
                # delivery): not a refusal that leaves the member without an answer
                error = {"code": 40060, "message": "Interaction has already been acknowledged."}
                self.calls.append(Call(request.method, path, body, files, uploads, error))
                self.acknowledged_twice.append(parts[1])
                return json_response(400, error)
            self.acknowledged.add(parts[1])
        if any(fragment in path for fragment in self.forbidden):
            error = {"code": 50013, "message": "Missing Permissions"}
            self.calls.append(Call(request.method, path, body, files, uploads, error))
            data = json.dumps(error).encode()
            return web.Response(status=403, body=data, headers={"Content-Type": "application/json"})
        if request.method in ("PATCH", "DELETE") and path.rsplit("/", 1)[-1] in self.deleted:
            error = {"code": 10008, "message": "Unknown Message"}
            self.calls.append(Call(request.method, path, body, files, uploads, error))
            data = json.dumps(error).encode()
            return web.Response(status=404, body=data, headers={"Content-Type": "application/json"})
        refused = refusal(body, files, self.upload_limit) if request.method != "GET" else ""
        if refused:
            error = {"code": 50035, "message": f"Invalid Form Body: {refused}", "errors": {}}
            self.calls.append(
                Call(request.method, path, body, files, uploads, error, None, refused)
            )
            data = json.dumps(error).encode()
            return web.Response(status=400, body=data, headers={"Content-Type": "application/json"})
        answer = self.answer(request.method, path, body)
        call = Call(request.method, path, body, files, uploads, answer)
        call.private = self.visibility(request.method, path, body)
        call.at = time.monotonic()
        self.calls.append(call)
        self.keep(request.method, parts, body, files, answer)
        # discord.py reads a body as JSON only for exactly this content type (no charset)
        data = json.dumps(answer).encode()
        return web.Response(body=data, headers={"Content-Type": "application/json"})

    def rate_limit(self, method: str, channel: str) -> tuple[web.Response, bool] | None:
        """Every third call of a bucket (method, channel) is answered 429 as Discord answers
        it, and so is any call before its retry_after passed: (the answer, was it early)."""
        bucket = (method, channel)
        now = time.monotonic()
        early = now < self._blocked.get(bucket, 0.0)
        if not early:
            self._counts[bucket] = self._counts.get(bucket, 0) + 1
            if self._counts[bucket] % 3:
                return None
            self._blocked[bucket] = now + self.retry_after_s
        wait = max(self._blocked[bucket] - now, 0.0)
        body = {"message": "You are being rate limited.", "retry_after": round(wait, 3),
                "global": False}  # fmt: skip
        headers = {
            "Via": "1.1 google",  # discord.py takes a 429 without it for Cloudflare's ban
            "Retry-After": str(max(1, round(wait))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + wait:.3f}",
            "X-RateLimit-Reset-After": f"{wait:.3f}",
            "X-RateLimit-Bucket": hashlib.md5(method.encode()).hexdigest()[:16],
            "X-RateLimit-Scope": "user",
        }
        return json_response(429, body, headers), early

    def keep(
        self, method: str, parts: list[str], body: dict[str, Any] | None,
        files: list[tuple[str, int]], answer: Any,
    ) -> None:  # fmt: skip
        """Remember a channel message as it reads after this post or edit."""
        if parts[0] != "channels" or len(parts) < 3 or parts[2] != "messages":
            return
        if method == "POST" and len(parts) == 3:
            message_id = str(answer["id"])
        elif method == "PATCH" and len(parts) == 4:
            message_id = parts[3]
        else:
            return
        kept = self.messages.setdefault(message_id, {"channel": parts[1], "files": []})
        if body is not None and "content" in body:
            kept["content"] = body["content"] or ""
        results = [name for name, _ in files if name != PREVIEW]
        if results:
            kept["files"] = results

    def visibility(self, method: str, path: str, body: Any) -> bool | None:
        """Who sees an interaction's answer: a deferral sets it for the first follow-up,
        whatever that follow-up's own flags say; later follow-ups keep their own."""
        if body is not None and not isinstance(body, dict):
            return None  # not a message (a list of commands)
        parts = path.strip("/").split("/")
        flags = int(((body or {}).get("data") or body or {}).get("flags") or 0)
        if parts[0] == "interactions" and parts[-1] == "callback":
            if (body or {}).get("type") == 5:
                self.deferred[parts[2]] = bool(flags & EPHEMERAL)
            return None
        if method == "POST" and parts[0] == "webhooks" and len(parts) >= 3:
            token = parts[2]
            if token in self.deferred:
                return self.deferred.pop(token)  # the first follow-up: the deferral's
            return bool(flags & EPHEMERAL)
        return None

    def refusals(self) -> list[str]:
        """Every request the fake refused as Discord would."""
        return [f"{c.method} {c.path}: {c.refused}" for c in self.calls if c.refused]

    def answer(self, method: str, path: str, body: Any) -> Any:
        parts = path.strip("/").split("/")
        if path == "/users/@me":
            return BOT_USER
        if parts[0] == "applications" and parts[-1] == "commands" and method == "PUT":
            self.synced = [  # as Discord stores them: with ids, its version, the scope
                {**c, "id": str(next(self.ids)), "application_id": str(APP_ID), "version": "1",
                 "guild_id": parts[3] if parts[2] == "guilds" else None}
                for c in body or []
            ]  # fmt: skip
            return self.synced
        if path == "/gateway/bot" and self.gateway is not None:
            limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
            return {"url": self.gateway.url, "shards": 1, "session_start_limit": limit}
        if path == "/oauth2/applications/@me":
            return {
                "id": str(APP_ID),
                "name": "storyloom",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": BOT_USER,
                "verify_key": "0" * 64,
                "flags": 0,
            }
        if parts[0] == "interactions":
            return {"interaction": {"id": parts[1], "type": 2}, "resource": {"type": 5}}
        if parts[0] == "channels" and parts[-1] == "threads":
            return {
                "id": str(next(self.ids)),
                "type": 11,
                "guild_id": str(GUILD_ID),
                "parent_id": parts[1],
                "name": (body or {}).get("name", "thread"),
                "owner_id": BOT_USER["id"],
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": "2026-11-24T00:00:00+00:00",
                    "locked": False,
                },
                "message_count": 0,
                "member_count": 1,
                "rate_limit_per_user": 0,
                "flags": 0,
            }
        channel = parts[1] if parts[0] == "channels" else "0"
        if method == "GET" and parts[0] == "channels" and parts[-1] == "messages":
            # a channel's history, newest first, as Discord lists it
            return list(reversed(self.posted.get(channel, [])))
        message = self.message(channel, (body or {}).get("content"))
        if method == "POST" and parts[0] == "channels" and parts[-1] == "messages":
            self.posted.setdefault(channel, []).append(message)
        return message

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)  # uploads are pages and PDFs
        if self.gateway is not None:
            self.gateway.route(app)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)  # a free port
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self.gateway is not None:
            self.gateway.url = f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def api_url(self) -> str:
        """The base of the REST API, as `STORYLOOM_DISCORD_API_URL` names it."""
        return f"http://127.0.0.1:{self.port}/api/v10"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def where(self, method: str, fragment: str) -> list[Call]:
        """The calls that happened (a 429 did not) with this method and path fragment."""
        return [
            c for c in self.calls if c.method == method and fragment in c.path and not c.throttled
        ]

    def uploads_to(self, fragment: str) -> list[Call]:
        """Posts and edits that carried result files, in order (not a progress preview)."""
        sent = ("POST", "PATCH")
        return [
            c
            for c in self.calls
            if c.method in sent
            and fragment in c.path
            and c.files
            and any(name != PREVIEW for name, _ in c.files)
        ]

    def job_posts(self, fragment: str) -> list[Call]:
        """The bot's posts apart from the story's own lines (a new beat, a story's opening):
        status messages and results."""
        return [
            c
            for c in self.where("POST", fragment)
            if not STORY_POST.match((c.json or {}).get("content") or "")
        ]

    async def wait_for(
        self, method: str, fragment: str, count: int = 1, timeout: float = 60
    ) -> list[Call]:
        """Wait until at least ``count`` matching calls arrived (handlers run as tasks)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := self.where(method, fragment)) < count:
            if loop.time() > deadline:
                seen = [(c.method, c.path) for c in self.calls]
                raise AssertionError(f"no {count}× {method} {fragment}; calls: {seen}")
            await asyncio.sleep(0.02)
        return found

    async def wait_for_uploads(
        self, fragment: str, count: int = 1, timeout: float = 60
    ) -> list[Call]:
        """Wait until at least `count` messages with attachments arrived (posts, or a status
        message edited into the result); return them all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := [c for c in self.uploads_to(fragment) if not c.refused]) < count:
            if loop.time() > deadline:
                raise AssertionError(f"not {count} uploads to {fragment}: {len(found)}")
            await asyncio.sleep(0.02)
        return found

    async def wait_for_text(
        self, method: str, fragment: str, text: str, timeout: float = 60
    ) -> Call:
        """Wait until a matching call carries exactly this content, or this first line (the
        status line of a status message edited into the result; the watcher reports in a
        task of its own: a drained queue may still be telling the chat)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for call in self.where(method, fragment):
                # a status line, alone or above the result's credits
                if ((call.json or {}).get("content") or "").split("\n")[0] == text:
                    return call
            if loop.time() > deadline:
                said = [(c.json or {}).get("content") for c in self.where(method, fragment)]
                raise AssertionError(f"no {method} {fragment} saying {text!r}; said: {said}")
            await asyncio.sleep(0.02)


def json_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    """An error as Discord answers it (discord.py reads JSON only for exactly this type)."""
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


_ids = itertools.count(900_000)


def member(user_id: int, name: str, permissions: int = 0) -> dict[str, Any]:
    return {
        "user": {
            "id": str(user_id),
            "username": name.lower(),
            "discriminator": "0",
            "avatar": None,
            "global_name": name,
        },
        "roles": [],
        "joined_at": "2026-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "permissions": str(permissions),
    }


def thread(thread_id: int, parent_id: int = 4242, guild_id: int = GUILD_ID) -> dict[str, Any]:
    return {
        "id": str(thread_id),
        "type": 11,
        "guild_id": str(guild_id),
        "parent_id": str(parent_id),
        "owner_id": "1000",
        "name": "story",
        "message_count": 0,
        "member_count": 1,
        "rate_limit_per_user": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2026-11-24T00:00:00+00:00",
            "locked": False,
        },
        "flags": 0,
        "permissions": str((1 << 53) - 1),
    }


def text_channel(channel_id: int, guild_id: int = GUILD_ID) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(guild_id),
        "name": "comics",
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "flags": 0,
        "permissions": str((1 << 53) - 1),
    }


def guild(guild_id: int, *channels: dict[str, Any]) -> dict[str, Any]:
    """A GUILD_CREATE payload: the guild with its text channels and active threads."""
    listed = [{k: v for k, v in c.items() if k != "permissions"} for c in channels]
    return {
        "id": str(guild_id),
        "name": f"guild {guild_id}",
        "icon": None,
        "owner_id": "1",
        "unavailable": False,
        "member_count": 3,
        "large": False,
        "roles": [
            {
                "id": str(guild_id),
                "name": "@everyone",
                "permissions": "0",
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }
        ],
        "emojis": [],
        "stickers": [],
        "features": [],
        "members": [],
        "voice_states": [],
        "presences": [],
        "channels": [c for c in listed if c["type"] != 11],
        "threads": [c for c in listed if c["type"] == 11],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "joined_at": "2026-01-01T00:00:00+00:00",
        "mfa_level": 0,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "nsfw_level": 0,
        "system_channel_flags": 0,
    }


def _base(kind: int, channel: dict[str, Any], who: dict[str, Any], limit: int) -> dict[str, Any]:
    number = next(_ids)
    return {
        "id": str(number),
        "application_id": str(APP_ID),
        "type": kind,
        "token": f"interaction-token-{number}",
        "version": 1,
        "guild_id": channel["guild_id"],
        "channel_id": channel["id"],
        "channel": channel,
        "member": who,
        "app_permissions": str((1 << 53) - 1),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {},
        "context": 0,
        "attachment_size_limit": limit,
    }


def slash(
    sub: str,
    channel: dict[str, Any],
    who: dict[str, Any],
    limit: int = 10 * 1024 * 1024,
    **options: Any,
) -> dict[str, Any]:
    """An INTERACTION_CREATE payload for `/story <sub> option=value…`."""
    kinds = {str: 3, int: 4, bool: 5}
    payload = _base(2, channel, who, limit)
    payload["data"] = {
        "id": "1",
        "name": "story",
        "type": 1,
        "options": [
            {
                "type": 1,
                "name": sub,
                "options": [
                    {"type": kinds[type(v)], "name": k, "value": v} for k, v in options.items()
                ],
            }
        ],
    }
    return payload


def press(custom_id: str, channel: dict[str, Any], who: dict[str, Any]) -> dict[str, Any]:
    """An INTERACTION_CREATE payload for a button press."""
    payload = _base(3, channel, who, 10 * 1024 * 1024)
    payload["data"] = {"custom_id": custom_id, "component_type": 2}
    fake = FakeDiscord()
    payload["message"] = fake.message(channel["id"], "status")
    # discord.py rebuilds a dynamic item from the message's components, as Discord sends them
    button = {"type": 2, "style": 4, "label": "Cancel", "custom_id": custom_id}
    payload["message"]["components"] = [{"type": 1, "components": [button]}]
    return payload
