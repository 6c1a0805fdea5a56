"""A loopback fake of Slack's Web API that records every call, and a signed-request sender."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import ClientSession, web
from slack_sdk.signature import SignatureVerifier

SECRET = "test-signing-secret"


_triggers = itertools.count(1)

# Slack's limits on a message (chat.postMessage, chat.postEphemeral, chat.update): over
# them it answers `msg_too_long` or `invalid_blocks` and posts nothing
MAX_TEXT = 40_000
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_ELEMENTS = 25  # in one actions block
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_VALUE = 2000
MAX_ACTION_ID = 255
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MESSAGE_METHODS = {"chat.postMessage", "chat.postEphemeral", "chat.update"}


def block_refusal(blocks: list[dict[str, Any]]) -> str:
    """Why Slack would refuse these blocks ("" if it would take them)."""
    if len(blocks) > MAX_BLOCKS:
        return f"no more than {MAX_BLOCKS} items allowed"
    for block in blocks:
        if block.get("type") == "section" and len(block["text"]["text"]) > MAX_SECTION_TEXT:
            return f"section text: must be less than {MAX_SECTION_TEXT} characters"
        elements = block.get("elements", [])
        most = MAX_CONTEXT_ELEMENTS if block.get("type") == "context" else MAX_ELEMENTS
        if len(elements) > most:
            return f"{block.get('type')}: must be no more than {most} elements"
        for element in elements if block.get("type") == "actions" else []:
            if len(element.get("action_id", "")) > MAX_ACTION_ID:
                return "action_id too long"
            if len(element.get("value", "")) > MAX_VALUE:
                return "value too long"
            if len((element.get("text") or {}).get("text", "")) > MAX_BUTTON_TEXT:
                return "button text too long"
            options = element.get("options", [])
            if len(options) > MAX_OPTIONS:
                return f"options: must be no more than {MAX_OPTIONS} items"
            if any(len(o["text"]["text"]) > MAX_OPTION_TEXT for o in options):
                return "option text too long"
    return ""


def refusal(method: str, params: dict[str, Any]) -> str:
    """Slack's error for a message it would not post ("" if it would)."""
    if method not in MESSAGE_METHODS:
        return ""
    if len(str(params.get("text") or "")) > MAX_TEXT:
        return "msg_too_long"
    blocks = params.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return "invalid_blocks" if block_refusal(blocks) else ""


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str
    answer: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)  # when the fake answered it


@dataclass
class FakeSlack:
    """Answers the Web API methods storyloom uses, as Slack documents their answers."""

    calls: list[Call] = field(default_factory=list)
    uploads: list[bytes] = field(default_factory=list)
    shared: dict[str, bytes] = field(default_factory=dict)  # files members shared, by id
    responses: list[dict[str, Any]] = field(default_factory=list)  # posts to a response_url
    base: str = ""
    rate_limit_once: set[str] = field(default_factory=set)  # methods answered 429 once
    delay_s: dict[str, float] = field(default_factory=dict)  # methods that answer slowly
    errors: dict[str, str] = field(default_factory=dict)  # methods answered with this error
    # users.info: members who are workspace admins (so storyloom moderators), and names
    admins: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)
    # OAuth: oauth.v2.access answers per code, and the workspace each bot token belongs to
    installs: dict[str, dict[str, Any]] = field(default_factory=dict)
    teams: dict[str, str] = field(default_factory=lambda: {"xoxb-test": "T1"})
    refused: list[str] = field(default_factory=list)  # messages over Slack's limits
    # tokens whose calls are throttled as Slack does: every `throttle_every`-th call of such
    # a token is answered 429 with Retry-After `throttle_after_s`
    throttled: set[str] = field(default_factory=set)
    throttle_every: int = 3
    throttle_after_s: int = 1
    # what is in each channel, as Slack keeps it: messages (and file shares) by ts
    messages: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # Socket Mode: the connected app's websocket and its acks (monotonic time, message)
    socket: web.WebSocketResponse | None = None
    acks: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    _ts: int = 0
    _counted: dict[str, int] = field(default_factory=dict)

    def app(self) -> web.Application:
        # a real page (PNG, PDF, ZIP) is over aiohttp's default 1 MiB; Slack takes far more
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/socket", self.socket_mode)
        app.router.add_route("*", "/api/{method}", self.api)
        app.router.add_post("/upload/{file_id}", self.upload)
        app.router.add_get("/files/{file_id}/{name}", self.download)
        app.router.add_post("/respond/{command}", self.respond)
        return app

    async def socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: the app's websocket. Slack says hello, then sends envelopes; the app
        acks each one by sending its envelope id back."""
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}}
        )
        self.socket = socket
        async for message in socket:
            if message.type == web.WSMsgType.TEXT:
                self.acks.append((time.monotonic(), json.loads(message.data)))
        return socket

    async def envelope(self, kind: str, payload: dict[str, Any], **extra: Any) -> str:
        """Send an envelope over the socket (`slash_commands`, `events_api`, `interactive`);
        its id."""
        assert self.socket is not None, "no app connected over Socket Mode"
        envelope_id = f"env-{next(_triggers)}"
        await self.socket.send_json(
            {"envelope_id": envelope_id, "type": kind, "payload": payload,
             "accepts_response_payload": kind != "events_api", **extra}
        )  # fmt: skip
        return envelope_id

    async def acked(self, envelope_id: str, timeout: float = 10.0) -> float:
        """When the app acked the envelope (monotonic seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            for at, ack in self.acks:
                if ack.get("envelope_id") == envelope_id:
                    return at
            if time.monotonic() > deadline:
                raise AssertionError(f"envelope {envelope_id} was never acked")
            await asyncio.sleep(0.01)

    async def respond(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")

    def share_file(self, name: str, data: bytes, mimetype: str) -> dict[str, Any]:
        """A file a member shares with a message, as the event lists it; its bytes are
        served at its private URL."""
        self._ts += 1
        file_id = f"F{self._ts:06d}"
        self.shared[file_id] = data
        url = f"{self.base}files/{file_id}/{name}"
        return {"id": file_id, "name": name, "size": len(data), "mimetype": mimetype,
                "url_private": url, "url_private_download": url}  # fmt: skip

    async def download(self, request: web.Request) -> web.Response:
        """A private file: with a bot token of the workspace its bytes; without, Slack's
        sign-in page (HTML, status 200), as Slack answers a request without the token."""
        self.calls.append(Call("download", dict(request.match_info), ""))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.teams:
            sign_in = "<!DOCTYPE html><html>Sign in</html>"
            return web.Response(text=sign_in, content_type="text/html")
        data = self.shared.get(request.match_info["file_id"])
        return web.Response(status=404) if data is None else web.Response(body=data)

    async def upload(self, request: web.Request) -> web.Response:
        self.uploads.append(await request.read())
        return web.Response(text="OK")

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        params = {**request.query, **params}  # the SDK sends some methods' params in the URL
        # a bot token as `Bearer`, the app's client id and secret as `Basic` (oauth.v2.access)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        await asyncio.sleep(self.delay_s.get(method, 0.0))
        if token in self.throttled:
            self._counted[token] = self._counted.get(token, 0) + 1
            if self._counted[token] % self.throttle_every == 0:
                self.calls.append(Call(method + " (429)", dict(params), token))
                headers = {"Retry-After": str(self.throttle_after_s)}
                return web.json_response(
                    {"ok": False, "error": "ratelimited"}, status=429, headers=headers
                )
        if method in self.rate_limit_once:
            self.rate_limit_once.discard(method)
            self.calls.append(Call(method + " (429)", dict(params), token))
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "0"}
            )
        refused = refusal(method, params)
        if refused:
            self.refused.append(f"{method}: {refused}")
        if method in self.errors or refused:
            answer = {"ok": False, "error": self.errors.get(method) or refused}
        else:
            answer = self.answer(method, params, token)
        self.calls.append(Call(method, dict(params), token, answer))
        return web.json_response({"ok": True, **answer})

    def answer(self, method: str, params: dict[str, Any], token: str) -> dict[str, Any]:
        if method == "auth.test":
            if token not in self.teams:
                return {"ok": False, "error": "invalid_auth"}
            team = self.teams[token]
            return {"team_id": team, "user_id": "UBOT", "bot_id": "B" + team, "url": "https://t/"}
        if method == "apps.connections.open":
            return {"url": self.base.replace("http://", "ws://") + "socket"}
        if method == "oauth.v2.access":
            if params.get("code") not in self.installs:
                return {"ok": False, "error": "invalid_code"}
            return self.installs[params["code"]]
        if method == "chat.postMessage":
            self._ts += 1
            ts = f"1700000000.{self._ts:06d}"
            channel = str(params.get("channel"))
            self.messages.setdefault(channel, {})[ts] = {
                "ts": ts,
                "text": params.get("text", ""),
                "thread_ts": params.get("thread_ts"),
            }
            return {"channel": channel, "ts": ts}
        if method == "chat.update":
            kept = self.messages.get(str(params.get("channel")), {})
            if params.get("ts") not in kept:
                return {"ok": False, "error": "message_not_found"}
            kept[params["ts"]]["text"] = params.get("text", "")
            return {"channel": params.get("channel"), "ts": params["ts"]}
        if method == "chat.delete":
            if self.messages.get(str(params.get("channel")), {}).pop(params.get("ts"), None):
                return {}
            return {"ok": False, "error": "message_not_found"}
        if method == "conversations.replies":
            kept = self.messages.get(str(params.get("channel")), {})
            thread = params.get("ts")
            found = [m for m in kept.values() if thread in (m["ts"], m.get("thread_ts"))]
            return {"messages": sorted(found, key=lambda m: m["ts"]), "has_more": False}
        if method == "users.info":
            user = params["user"]
            name = self.names.get(user, user)
            profile = {"display_name": name, "real_name": name}
            return {
                "user": {
                    "id": user,
                    "name": user.lower(),
                    "profile": profile,
                    "is_admin": user in self.admins,
                    "is_owner": False,
                    "is_primary_owner": False,
                }
            }
        if method == "files.getUploadURLExternal":
            self._ts += 1
            return {"upload_url": f"{self.base}upload/F{self._ts}", "file_id": f"F{self._ts}"}
        if method == "files.completeUploadExternal":
            files = [{"id": f["id"]} for f in json.loads(params["files"])]
            if params.get("channel_id"):  # shared into a channel: a message with the files
                self._ts += 1
                ts = f"1700000000.{self._ts:06d}"
                self.messages.setdefault(str(params["channel_id"]), {})[ts] = {
                    "ts": ts,
                    "text": params.get("initial_comment", ""),
                    "thread_ts": params.get("thread_ts"),
                    "files": files,
                }
            return {"files": files}
        return {}

    def named(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """The calls of `method` once there are `count` of them (listeners run after ack)."""
        deadline = time.monotonic() + timeout
        while len(self.named(method)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{method}: {len(self.named(method))} calls, wanted {count}")
            await asyncio.sleep(0.01)
        return self.named(method)

    def texts(self) -> list[str]:
        """Every text the bot sent, in any field that Slack would render."""
        out = []
        for call in self.calls:
            for key in ("text", "blocks", "initial_comment"):
                if key in call.params:
                    out.append(str(call.params[key]))
        return out


@dataclass
class Sender:
    """Posts signed requests to the app, as Slack does."""

    http: ClientSession
    url: str
    response_url: str  # where Slack would take a command's delayed answers (the fake)
    secret: str = SECRET
    last_trigger_id: str = ""  # the trigger id of the last button press sent

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> int:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret or self.secret).generate_signature(
            timestamp=ts, body=body
        )
        assert signature is not None
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }
        async with self.http.post(self.url, data=body.encode(), headers=headers) as response:
            return response.status

    async def command(
        self, text: str, *, team: str = "T1", channel: str = "C1", user: str = "U1",
        slash: str = "/story", **kw: Any,
    ) -> int:  # fmt: skip
        form = {
            "command": slash,
            "text": text,
            "team_id": team,
            "channel_id": channel,
            "user_id": user,
            "user_name": user.lower(),
            "trigger_id": f"trig-{next(_triggers)}",  # one per invocation, as Slack's
            "response_url": self.response_url,
        }
        return await self.post(urlencode(form), "application/x-www-form-urlencoded", **kw)

    async def mention(
        self,
        text: str,
        thread_ts: str | None,
        *,
        team: str = "T1",
        channel: str = "C1",
        user: str = "U1",
        event_id: str | None = None,
        files: list[dict[str, Any]] | None = None,
        **kw: Any,
    ) -> int:
        """An app_mention event (`files`: shared with the message); the same `event_id`
        twice is Slack retrying a delivery."""
        event: dict[str, Any] = {
            "type": "app_mention",
            "user": user,
            "text": f"<@UBOT> {text}",
            "ts": "1700000999.000001",
            "channel": channel,
        }
        if files:
            event["files"] = files
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        body = {
            "type": "event_callback",
            "team_id": team,
            "api_app_id": "A1",
            "event": event,
            "event_id": event_id or f"Ev{time.monotonic_ns()}",
            "event_time": int(time.time()),
        }
        return await self.post(json.dumps(body), "application/json", **kw)

    async def button(
        self,
        action: str,
        value: str,
        *,
        team: str = "T1",
        channel: str = "C1",
        user: str = "U1",
        message_ts: str | None = None,
        **kw: Any,
    ) -> int:
        """A press of one of our buttons, on the message `message_ts` (by default a message
        of its own, so that two presses are two requests)."""
        payload = {
            "type": "block_actions",
            "team": {"id": team},
            "user": {"id": user, "name": user.lower()},
            "channel": {"id": channel},
            "api_app_id": "A1",
            "trigger_id": f"trig-{next(_triggers)}",
            "container": {
                "type": "message",
                "channel_id": channel,
                "message_ts": message_ts or f"1700000000.{next(_triggers):06d}",
            },
            "actions": [{"action_id": f"story_{action}", "value": value, "type": "button"}],
        }
        self.last_trigger_id = payload["trigger_id"]
        return await self.post(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded", **kw
        )

    async def select(
        self, action: str, value: str, *, team: str = "T1", channel: str = "C1", user: str = "U1"
    ) -> int:
        """An option picked from a select menu (Slack sends it as `selected_option`)."""
        payload = {
            "type": "block_actions",
            "team": {"id": team},
            "user": {"id": user, "name": user.lower()},
            "channel": {"id": channel},
            "api_app_id": "A1",
            "trigger_id": f"trig-{next(_triggers)}",
            "container": {"type": "message", "channel_id": channel},
            "actions": [
                {
                    "action_id": f"story_{action}",
                    "type": "static_select",
                    "selected_option": {
                        "text": {"type": "plain_text", "text": "Panel"},
                        "value": value,
                    },
                }
            ],
        }
        return await self.post(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
        )

    async def submit_beat(
        self, channel: str, thread_ts: str, text: str, *, team: str = "T1", user: str = "U1"
    ) -> int:
        payload = {
            "type": "view_submission",
            "team": {"id": team},
            "user": {"id": user, "name": user.lower()},
            "api_app_id": "A1",
            "view": {
                "id": "V1",
                "type": "modal",
                "callback_id": "story_add_beat",
                "private_metadata": f"{channel}|{thread_ts}",
                "state": {
                    "values": {"beat": {"text": {"type": "plain_text_input", "value": text}}}
                },
            },
        }
        return await self.post(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
        )
