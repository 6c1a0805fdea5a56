"""A loopback fake of Discord's gateway (the websocket a bot process listens on), speaking
the protocol as discord.py 2.x speaks it and refusing what Discord refuses.

One connection: HELLO (op 10) → IDENTIFY (op 2; a wrong token closes 4004) → READY (the
session, the resume URL, the application, the guilds as unavailable) → one GUILD_CREATE
per guild; then heartbeats (op 1 → op 11) and dispatches with sequence numbers. A client
that stops beating is closed (4009), one that reconnects may RESUME (op 6) and gets what
it missed, then RESUMED. discord.py asks for transport compression (`compress=zlib-stream`):
every frame is then one zlib stream's piece ending in a sync flush, in binary frames.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

HELLO, IDENTIFY, HEARTBEAT, HEARTBEAT_ACK, RESUME, INVALID_SESSION, DISPATCH = 10, 2, 1, 11, 6, 9, 0
# Discord's close codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes)
DECODE_ERROR = 4002
NOT_AUTHENTICATED = 4003
AUTHENTICATION_FAILED = 4004
ALREADY_AUTHENTICATED = 4005
INVALID_SEQ = 4007
RATE_LIMITED = 4008
SESSION_TIMED_OUT = 4009
INVALID_API_VERSION = 4012
INVALID_INTENTS = 4013
SENDS_PER_MINUTE = 120  # what a connection may send in 60 s before Discord closes it


@dataclass
class Session:
    """One identified session: its events, numbered, kept for a RESUME."""

    session_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    socket: Connection | None = None  # the connection serving it now, if any

    @property
    def seq(self) -> int:
        return len(self.events)


class Connection:
    """One websocket, with Discord's framing (plain text or a zlib stream)."""

    def __init__(self, ws: web.WebSocketResponse, compressed: bool) -> None:
        self.ws = ws
        self._zlib = zlib.compressobj() if compressed else None
        self._lock = asyncio.Lock()

    async def send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        async with self._lock:  # the zlib stream's pieces must go out in order
            if self._zlib is None:
                await self.ws.send_str(text)
            else:
                piece = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(piece)

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode())


@dataclass
class FakeGateway:
    """The gateway of one application; `dispatch` sends an event to the live session."""

    token: str
    url: str = ""  # ws://…/gateway, set once the server listens (resume_gateway_url)
    user: dict[str, Any] = field(default_factory=dict)
    application_id: int = 0
    guilds: list[dict[str, Any]] = field(default_factory=list)  # GUILD_CREATE payloads
    heartbeat_ms: int = 41_250  # Discord's interval today
    grace_s: float = 5.0  # a late beat Discord still takes
    sessions: dict[str, Session] = field(default_factory=dict)
    live: Session | None = None
    closes: list[int] = field(default_factory=list)  # the codes this fake closed with
    identifies: int = 0
    beats: int = 0  # heartbeats received, all connections together
    resumes: int = 0
    invalidated: int = 0  # RESUMEs answered op 9 (identify anew)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def route(self, app: web.Application) -> None:
        app.router.add_get("/gateway", self.handle)

    async def dispatch(self, event: str, data: dict[str, Any], timeout: float = 60) -> int:
        """Send an event to the live session once there is one; its sequence number."""
        deadline = time.monotonic() + timeout
        while self.live is None or self.live.socket is None:
            if time.monotonic() > deadline:
                raise AssertionError("no bot is connected to the gateway")
            await asyncio.sleep(0.02)
        session, socket = self.live, self.live.socket
        payload = {"op": DISPATCH, "t": event, "s": session.seq + 1, "d": data}
        session.events.append(payload)
        await socket.send(payload)
        return int(payload["s"])

    async def connected(self, after: int = 0, timeout: float = 60) -> Session:
        """Wait until more than `after` sessions were identified and one is live."""
        deadline = time.monotonic() + timeout
        while self.identifies + self.resumes <= after or self.live is None:
            if time.monotonic() > deadline:
                raise AssertionError("no bot connected to the gateway")
            await asyncio.sleep(0.02)
        return self.live

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoclose=True)
        await ws.prepare(request)
        query = request.query
        connection = Connection(ws, compressed=query.get("compress") == "zlib-stream")
        if query.get("v") != "10":
            return await self._close(connection, INVALID_API_VERSION, "Invalid API version")
        if query.get("encoding") != "json" or query.get("compress") not in (None, "zlib-stream"):
            # etf and zstd-stream are Discord's too; this fake speaks only what discord.py
            # here asks for, and says so rather than answering in another framing
            return await self._close(connection, DECODE_ERROR, "Error while decoding payload.")
        await connection.send({"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_ms},
                               "s": None, "t": None})  # fmt: skip
        session: Session | None = None
        sent: list[float] = []
        last_beat = time.monotonic()
        try:
            while not ws.closed:
                wait = last_beat + self.heartbeat_ms / 1000 + self.grace_s - time.monotonic()
                try:
                    message = await ws.receive(timeout=max(wait, 0.01))
                except TimeoutError:
                    return await self._close(connection, SESSION_TIMED_OUT, "Session timed out")
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    break
                if message.type != WSMsgType.TEXT:  # clients send JSON text, never zlib
                    return await self._close(connection, DECODE_ERROR, "Error while decoding.")
                now = time.monotonic()
                sent = [t for t in sent if now - t < 60] + [now]
                if len(sent) > SENDS_PER_MINUTE:
                    return await self._close(
                        connection, RATE_LIMITED, "You are being rate limited."
                    )
                try:
                    payload = json.loads(message.data)
                    op, data = payload["op"], payload.get("d")
                except (ValueError, KeyError, TypeError):
                    return await self._close(connection, DECODE_ERROR, "Error while decoding.")
                if op == HEARTBEAT:
                    last_beat = now
                    self.beats += 1
                    await connection.send({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
                elif op == IDENTIFY:
                    if session is not None:
                        return await self._close(connection, ALREADY_AUTHENTICATED,
                                                 "You're already authenticated.")  # fmt: skip
                    refused = self._identify_refusal(data)
                    if refused is not None:
                        return await self._close(connection, *refused)
                    session = await self._ready(connection)
                elif op == RESUME:
                    if session is not None:
                        return await self._close(connection, ALREADY_AUTHENTICATED,
                                                 "You're already authenticated.")  # fmt: skip
                    if not isinstance(data, dict) or data.get("token") != self.token:
                        return await self._close(connection, AUTHENTICATION_FAILED,
                                                 "Authentication failed.")  # fmt: skip
                    session = await self._resume(connection, data)
                    if session is None:  # unknown session: identify anew (Discord's op 9)
                        self.invalidated += 1
                        await connection.send({"op": INVALID_SESSION, "d": False, "s": None,
                                               "t": None})  # fmt: skip
                elif session is None:
                    return await self._close(connection, NOT_AUTHENTICATED, "Not authenticated.")
        finally:
            if session is not None and session.socket is connection:
                session.socket = None
        return ws

    def _identify_refusal(self, data: Any) -> tuple[int, str] | None:
        if not isinstance(data, dict) or not isinstance(data.get("properties"), dict):
            return DECODE_ERROR, "Error while decoding payload."
        if data.get("token") != self.token:
            return AUTHENTICATION_FAILED, "Authentication failed."
        if not isinstance(data.get("intents"), int) or data["intents"] < 0:
            return INVALID_INTENTS, "Invalid intent(s)."
        return None

    async def _ready(self, connection: Connection) -> Session:
        self.identifies += 1
        session = Session(f"fake-session-{next(self._ids)}", socket=connection)
        self.sessions[session.session_id] = session
        ready = {
            "v": 10,
            "user": self.user,
            "guilds": [{"id": g["id"], "unavailable": True} for g in self.guilds],
            "session_id": session.session_id,
            "resume_gateway_url": self.url,
            "application": {"id": str(self.application_id), "flags": 0},
        }
        await self._send_event(session, "READY", ready)
        for guild in self.guilds:
            await self._send_event(session, "GUILD_CREATE", guild)
        self.live = session
        return session

    async def _resume(self, connection: Connection, data: dict[str, Any]) -> Session | None:
        session = self.sessions.get(str(data.get("session_id")))
        seq = data.get("seq")
        if session is None or not isinstance(seq, int):
            return None
        if seq > session.seq:
            await self._close(connection, INVALID_SEQ, "Invalid seq.")
            return None
        self.resumes += 1
        session.socket = connection
        for missed in session.events[seq:]:
            await connection.send(missed)
        await self._send_event(session, "RESUMED", {})
        self.live = session
        return session

    async def _send_event(self, session: Session, event: str, data: dict[str, Any]) -> None:
        payload = {"op": DISPATCH, "t": event, "s": session.seq + 1, "d": data}
        session.events.append(payload)
        assert session.socket is not None
        await session.socket.send(payload)

    async def _close(self, connection: Connection, code: int, reason: str) -> web.WebSocketResponse:
        self.closes.append(code)
        await connection.close(code, reason)
        return connection.ws

    async def drop(self) -> None:
        """Cut the live connection without a goodbye (a network blip): the client resumes."""
        if self.live is not None and self.live.socket is not None:
            socket, self.live.socket = self.live.socket, None
            await socket.close(4000, "Unknown error")  # Discord: reconnect and resume
