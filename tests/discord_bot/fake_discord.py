"""A loopback fake of the parts of Discord's REST API the bot uses, recording every call."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

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


def refusal(body: dict[str, Any] | None, files: list[tuple[str, int]], upload_limit: int) -> str:
    """Why Discord would refuse this message body ("" if it would take it)."""
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
        body: dict[str, Any] | None = None
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
        self.calls.append(call)
        # discord.py reads a body as JSON only for exactly this content type (no charset)
        data = json.dumps(answer).encode()
        return web.Response(body=data, headers={"Content-Type": "application/json"})

    def visibility(self, method: str, path: str, body: dict[str, Any] | None) -> bool | None:
        """Who sees an interaction's answer: a deferral sets it for the first follow-up,
        whatever that follow-up's own flags say; later follow-ups keep their own."""
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

    def answer(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        parts = path.strip("/").split("/")
        if path == "/users/@me":
            return BOT_USER
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
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)  # a free port
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def where(self, method: str, fragment: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and fragment in c.path]

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


def thread(thread_id: int, parent_id: int = 4242) -> dict[str, Any]:
    return {
        "id": str(thread_id),
        "type": 11,
        "guild_id": str(GUILD_ID),
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


def text_channel(channel_id: int) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(GUILD_ID),
        "name": "comics",
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "flags": 0,
        "permissions": str((1 << 53) - 1),
    }


def _base(kind: int, channel: dict[str, Any], who: dict[str, Any], limit: int) -> dict[str, Any]:
    number = next(_ids)
    return {
        "id": str(number),
        "application_id": str(APP_ID),
        "type": kind,
        "token": f"interaction-token-{number}",
        "version": 1,
        "guild_id": str(GUILD_ID),
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
