"""The console shares a story it rendered (a real tiny-model render) and serves its reader
while it runs; unshare kills the link at once."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import aiohttp
import pytest

from storyloom.bot.console import run_console
from storyloom.config import Settings
from storyloom.testing.devservices import free_port

TIMEOUT_S = 300.0  # one tiny render on a loaded CPU, with room to spare


class Screen:
    """The console's standard output, readable while it runs."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        return None

    async def until(self, pattern: str) -> re.Match[str]:
        while (found := re.search(pattern, self.text)) is None:
            await asyncio.sleep(0.05)
        return found


async def fetch(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.read()


def settings(tmp_path: Path, models: Path) -> Settings:
    """The console on the tiny model, serving its reader on a free port."""
    return Settings(
        model="tiny-sdxl",
        model_cache_dir=models,
        width=64,
        height=64,
        steps=2,
        store_dir=tmp_path / "stores",
        output_dir=tmp_path / "out",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'console.db'}",
        ops_port=free_port(),
        public_base_url="https://comics.example.org",
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


async def test_share_in_the_console_serves_the_rendered_page_until_unshared(
    tmp_path: Path, models: Path
) -> None:
    config = settings(tmp_path, models)
    port = config.ops_port
    read_fd, write_fd = os.pipe()
    screen = Screen()
    with os.fdopen(read_fd) as stdin, os.fdopen(write_fd, "w") as typed:

        def type_line(line: str) -> None:
            typed.write(line + "\n")
            typed.flush()

        console = asyncio.create_task(run_console(config, stdin, screen))  # type: ignore[arg-type]
        try:
            async with asyncio.timeout(TIMEOUT_S):
                type_line("/story new Tide & <Moon>")
                type_line("/story share")
                shared = await screen.until(r"comics\.example\.org/s/(\S+)|✗.*")
                assert shared[1], screen.text  # a story without pages yet shares too
                token = shared[1]
                type_line("/story add a lighthouse at night")
                type_line("/story render")
                await screen.until(r"job #\d+ page done")
                status, page = await fetch(f"http://127.0.0.1:{port}/s/{token}")
                assert status == 200 and b"Tide &amp; &lt;Moon&gt;" in page
                # the content is cached a moment: wait for the new page to show
                while b"/page/1" not in page:
                    await asyncio.sleep(0.2)
                    page = (await fetch(f"http://127.0.0.1:{port}/s/{token}"))[1]
                status, image = await fetch(f"http://127.0.0.1:{port}/s/{token}/page/1")
                assert status == 200 and image.startswith(b"\x89PNG")
                type_line("/story unshare")
                await screen.until("Revoked share link")
                assert (await fetch(f"http://127.0.0.1:{port}/s/{token}"))[0] == 404
                type_line("/story links")  # the host moderates the console's room
                await screen.until("This server has no live share links.")
        finally:
            typed.close()
            await asyncio.wait_for(console, 60)
