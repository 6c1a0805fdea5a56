"""A real headless Chromium driven over the Chrome DevTools Protocol (a websocket, with the
aiohttp we already depend on: no driver binary and no browser download to match).

`chromium()` starts Debian's browser in its own process group with a throwaway profile and
always kills the whole group on the way out, whatever happened inside the block.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

START_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 30.0


def chromium_binary() -> str | None:
    """Debian's chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Seen:
    """What one page load did: requests, failures, console errors, and the document's status."""

    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    document_status: int | None = None


class Tab:
    """One page target, over its own websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._loaded = asyncio.Event()
        self.seen = Seen()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self._event(data["method"], data.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        seen = self.seen
        if method == "Network.requestWillBeSent":
            seen.requests.append(params["request"]["url"])
        elif method == "Network.responseReceived" and params.get("type") == "Document":
            seen.document_status = params["response"]["status"]
        elif method == "Network.loadingFailed":
            seen.failed.append(params.get("errorText", "?"))
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning"):
            seen.errors.append(json.dumps(params["args"])[:300])
        elif method == "Runtime.exceptionThrown":
            seen.errors.append(json.dumps(params["exceptionDetails"])[:300])
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            entry = params["entry"]
            seen.errors.append(f"{entry['text']} ({entry.get('url', '')})")
        elif method == "Page.loadEventFired":
            self._loaded.set()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One command; its result (an error answer raises)."""
        self._next += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next] = future
        await self._ws.send_str(json.dumps({"id": self._next, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, COMMAND_TIMEOUT_S)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    async def open(self, url: str, width: int, height: int = 800, *, scripts: bool = True) -> Seen:
        """Load `url` in a `width`-px viewport (a phone below 500 px), with JavaScript on or
        off, and wait for its load event; what the load did."""
        self.seen = Seen()
        self._loaded.clear()
        for domain in ("Page", "Network", "Runtime", "Log"):
            await self.send(f"{domain}.enable")
        await self.send("Network.setCacheDisabled", cacheDisabled=True)
        await self.send("Emulation.setScriptExecutionDisabled", value=not scripts)
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width, height=height, deviceScaleFactor=1, mobile=width < 500,
        )  # fmt: skip
        result = await self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise RuntimeError(f"navigation to {url} failed: {result['errorText']}")
        await asyncio.wait_for(self._loaded.wait(), COMMAND_TIMEOUT_S)
        await asyncio.sleep(0.2)  # late console messages and failures arrive after load
        return self.seen

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (DevTools runs it whatever the page's CSP)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> Path:
        """The whole page as a PNG."""
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    async def close(self) -> None:
        self._reader.cancel()
        with suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()


class Browser:
    """A running Chromium: open tabs with `tab()`."""

    def __init__(self, port: int, session: aiohttp.ClientSession, pid: int) -> None:
        self._port = port
        self._session = session
        self.pid = pid  # of the browser, which leads its own process group

    @asynccontextmanager
    async def tab(self) -> AsyncIterator[Tab]:
        """A fresh page, closed at the end."""
        url = f"http://127.0.0.1:{self._port}/json/new?about:blank"
        async with self._session.put(url) as response:
            target = await response.json(content_type=None)
        ws = await self._session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        tab = Tab(ws)
        try:
            yield tab
        finally:
            await tab.close()
            close = f"http://127.0.0.1:{self._port}/json/close/{target['id']}"
            with suppress(aiohttp.ClientError):
                async with self._session.get(close):
                    pass


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Start headless Chromium; kill its whole process group when the block ends."""
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    profile = Path(tempfile.mkdtemp(prefix="storyloom-chromium-"))
    process = await asyncio.create_subprocess_exec(
        binary,
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--mute-audio",
        "--remote-debugging-port=0",
        "--remote-allow-origins=*",
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # its own process group: renderers and zygotes die with it
    )
    try:
        port = await _debugging_port(profile, process)
        async with aiohttp.ClientSession() as session:
            yield Browser(port, session, process.pid)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(process.wait(), 10)
        shutil.rmtree(profile, ignore_errors=True)


async def _debugging_port(profile: Path, process: asyncio.subprocess.Process) -> int:
    """The port Chromium chose, from the file it writes into its profile."""
    marker = profile / "DevToolsActivePort"
    async with asyncio.timeout(START_TIMEOUT_S):
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"chromium exited at start ({process.returncode})")
            if marker.is_file() and (lines := marker.read_text().split("\n"))[0].isdigit():
                return int(lines[0])
            await asyncio.sleep(0.05)
