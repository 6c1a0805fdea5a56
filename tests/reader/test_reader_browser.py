"""The reader in a real headless Chromium: from the running server and from the unpacked
ZIP export, on a 360 px phone and a 1280 px desktop.

Each load: a screenshot taken, no horizontal scroll, every image loaded and with alt text,
no console error, no request outside the server (or the export's folder), no script in the
document and every injection attempt shown as text. Revoked and bad links answer 404.
"""

from __future__ import annotations

import asyncio
import os
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from storyloom.storage.share_links import share_links
from storyloom.story import sharing
from tests.reader.browser import Browser, Tab, chromium, chromium_binary
from tests.reader.conftest import MODERATOR, OWNER, Shared
from tests.reader.stories import EVIL_AUTHOR, EVIL_DESCRIPTION, EVIL_TITLE

# (width, JavaScript on): the page must work, and look the same, with it off
WIDTHS = ((360, False), (1280, True))
EXPORT_WIDTHS = ((360, True), (1280, False))
TEST_TIMEOUT_S = 120.0  # a hung browser fails the test instead of hanging the run

PAGE_FACTS = """(() => {
  const doc = document.documentElement;
  return {
    scrollWidth: doc.scrollWidth,
    clientWidth: doc.clientWidth,
    images: [...document.images].map(i => ({
      src: i.currentSrc, complete: i.complete, width: i.naturalWidth,
      alt: i.getAttribute('alt'), shownWidth: i.getBoundingClientRect().width})),
    scripts: document.querySelectorAll('script, iframe, object, embed').length,
    title: document.title,
    h1: document.querySelector('h1').textContent,
    text: document.body.innerText,
  };
})()"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if chromium_binary() is None:
        if os.environ.get("STORYLOOM_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is not installed (STORYLOOM_TEST_REQUIRE_SERVICES=1)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    async with asyncio.timeout(TEST_TIMEOUT_S), chromium() as running:
        yield running


async def read(
    tab: Tab, url: str, width: int, shot: Path, allowed: str, scripts: bool
) -> dict[str, Any]:
    """Load the reader, check what every load must satisfy, and return the page's facts."""
    seen = await tab.open(url, width, scripts=scripts)
    await tab.screenshot(shot)
    assert shot.stat().st_size > 1000
    facts: dict[str, Any] = await tab.evaluate(PAGE_FACTS)
    assert seen.document_status in (200, None), seen  # file:// has no HTTP status
    assert seen.errors == [], seen.errors
    assert seen.failed == [], seen.failed
    outside = [r for r in seen.requests if not r.startswith(allowed)]
    assert outside == [], outside
    assert facts["scrollWidth"] <= facts["clientWidth"] == width, facts
    assert facts["images"], "no images"
    for image in facts["images"]:
        assert image["complete"] and image["width"] > 0, image
        assert image["alt"] and image["alt"].strip(), image
        assert image["shownWidth"] <= width, image
    assert facts["scripts"] == 0
    # injection attempts are text on the page, exactly as typed
    assert facts["title"] == EVIL_TITLE and facts["h1"] == EVIL_TITLE
    for evil in (EVIL_DESCRIPTION, EVIL_AUTHOR.split()[0]):
        assert evil in facts["text"]
    return facts


async def test_the_shared_reader_in_chromium_at_phone_and_desktop_widths(
    shared: Shared, browser: Browser, tmp_path: Path
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S), browser.tab() as tab:
        for width, scripts in WIDTHS:
            shot = tmp_path / f"server-{width}.png"
            facts = await read(tab, shared.reader_url, width, shot, shared.local("/"), scripts)
            alts = [image["alt"] for image in facts["images"]]
            assert alts[0].startswith("Page 1. Panel 1: Mira climbs <img")
            assert alts[1:] == [f"Mira: character sheet, image {n} of 2" for n in (1, 2)]
            _save_for_review(tmp_path / f"server-{width}.png")


async def test_revoked_and_bad_links_are_404_in_the_browser(
    shared: Shared, browser: Browser
) -> None:
    other = await sharing.share(shared.deps, share_links, OWNER, "https://x.example")
    revoked = other.url.rsplit("/", 1)[1]
    assert (await _status(browser, shared.local(f"/s/{revoked}"))) == 200
    await sharing.unshare(shared.deps, share_links, MODERATOR, other.link.id)
    for path in (f"/s/{revoked}", "/s/" + sharing.new_token(), "/s/<script>", "/s/a/b/c"):
        assert (await _status(browser, shared.local(path))) == 404, path


async def _status(browser: Browser, url: str) -> int | None:
    async with asyncio.timeout(TEST_TIMEOUT_S), browser.tab() as tab:
        return (await tab.open(url, 360)).document_status


async def test_the_exported_story_html_reads_offline_from_the_unpacked_zip(
    shared: Shared, browser: Browser, tmp_path: Path
) -> None:
    (archive,) = shared.out_dir.glob("job-*/story.zip")
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(unpacked)
    url = (unpacked / "story.html").as_uri()
    async with asyncio.timeout(TEST_TIMEOUT_S), browser.tab() as tab:
        for width, scripts in EXPORT_WIDTHS:
            shot = tmp_path / f"export-{width}.png"
            facts = await read(tab, url, width, shot, unpacked.as_uri() + "/", scripts)
            assert [i["src"] for i in facts["images"]] == [
                (unpacked / "pages" / "page-01.png").as_uri()
            ]
            _save_for_review(tmp_path / f"export-{width}.png")


def _save_for_review(shot: Path) -> None:
    """Keep a screenshot where a person can look at it, if asked to."""
    target = os.environ.get("STORYLOOM_TEST_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        (Path(target) / shot.name).write_bytes(shot.read_bytes())


async def test_the_browser_and_its_children_are_killed_even_when_a_test_fails() -> None:
    if chromium_binary() is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    pid = 0
    with pytest.raises(RuntimeError, match="a failing test"):
        async with asyncio.timeout(TEST_TIMEOUT_S), chromium() as running:
            pid = running.pid
            assert _live_in_group(pid)  # the browser and its helpers
            raise RuntimeError("a failing test")
    assert _live_in_group(pid) == []  # killed (zombies, until init reaps them, are dead)


def _live_in_group(pgid: int) -> list[int]:
    """Processes of this process group that are not zombies (from /proc)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            live.append(int(stat.parent.name))
    return live
