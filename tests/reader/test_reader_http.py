"""The reader over loopback HTTP, from the operations server of the bot side: the page,
its files by number, its headers, the same 404 for every wrong link, and the rate limit."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from pathlib import Path

import aiohttp
from markupsafe import escape

from storyloom.jobs.result_files import job_folder
from storyloom.jobs.retention import sweep_outputs
from storyloom.ops.server import ops_server
from storyloom.reader.page import stylesheet
from storyloom.reader.source import shown_jobs
from storyloom.storage.job_watch import save_artifacts
from storyloom.storage.share_links import share_links
from storyloom.storage.unit_of_work import session_of
from storyloom.story import service, sharing
from storyloom.story.model import Actor, JobStatus
from storyloom.testing.devservices import free_port
from tests.reader.conftest import MODERATOR, OWNER, Shared
from tests.reader.stories import (
    EVIL_AUTHOR,
    EVIL_BEAT,
    EVIL_DESCRIPTION,
    EVIL_TITLE,
    render_pages,
)


async def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, dict(response.headers), await response.read()


async def test_the_page_shows_title_pages_cast_and_credits_with_every_string_escaped(
    shared: Shared,
) -> None:
    status, headers, body = await fetch(shared.reader_url)
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    # member-written text appears only escaped: no tag of theirs reaches the document
    for evil in (EVIL_TITLE, EVIL_DESCRIPTION, EVIL_AUTHOR, '<img src="http://evil.example'):
        assert evil not in page and str(escape(evil)) in page
    assert "<script" not in page
    assert EVIL_BEAT.split("# ")[1] not in page
    srcs = re.findall(r'<img src="([^"]+)"', page)
    base = shared.token  # relative to /s/TOKEN: the page works under a proxy's path too
    assert srcs == [f"{base}/page/1", f"{base}/sheet/1/1", f"{base}/sheet/1/2"]
    # alt text of the page tells each panel's beat, tags as bare names
    alt = html.unescape(re.search(r'<img src="[^"]+/page/1" alt="([^"]+)"', page)[1])  # type: ignore[index]
    assert alt.startswith("Page 1. Panel 1: Mira climbs <img") and "Panel 4: Mira walks" in alt
    assert "beat 1" in html.unescape(page) and "beats 2–4" in html.unescape(page)


async def test_files_are_served_by_number_from_the_output_folder(shared: Shared) -> None:
    status, headers, body = await fetch(shared.reader_url + "/page/1")
    assert status == 200 and headers["Content-Type"] == "image/png"
    async with shared.db.reading() as uow:
        (job,) = [j for j in await uow.jobs.recent(1, 10) if j.kind.value == "page"]
    assert body == (job_folder(shared.out_dir, job.id) / "story-page-01.png").read_bytes()
    status, headers, _ = await fetch(shared.reader_url + "/sheet/1/2")
    assert status == 200 and headers["Content-Type"] == "image/png"


async def test_every_answer_carries_a_strict_policy_and_no_referrer(shared: Shared) -> None:
    for url in (shared.reader_url, shared.reader_url + "/page/1", shared.local("/s/nope")):
        _, headers, _ = await fetch(url)
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script" not in policy
        assert "img-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"
    async with aiohttp.ClientSession() as session, session.post(shared.reader_url) as response:
        assert (
            response.status == 405 and "default-src" in response.headers["Content-Security-Policy"]
        )
    # the one inline stylesheet is allowed by its hash, nothing else
    _, headers, body = await fetch(shared.reader_url)
    assert f"<style>{stylesheet()}</style>" in body.decode()


async def test_bad_unknown_revoked_and_out_of_range_links_get_the_same_404(
    shared: Shared,
) -> None:
    _, _, good = await fetch(shared.reader_url)
    other = await sharing.share(shared.deps, share_links, OWNER, "https://x.example")
    revoked_token = other.url.rsplit("/", 1)[1]
    await sharing.unshare(shared.deps, share_links, MODERATOR, other.link.id)
    wrong = [
        "/s/" + sharing.new_token(),
        "/s/short",
        "/s/" + revoked_token,
        "/s/" + revoked_token + "/page/1",
        f"/s/{shared.token}/page/2",
        f"/s/{shared.token}/page/0",
        f"/s/{shared.token}/sheet/99/1",
        f"/s/{shared.token}/clip",  # no clip rendered
        f"/s/{shared.token}/..%2F..%2Freader.db",
        f"/s/{shared.token}/page/1/../../../reader.db",
        f"/s/{shared.token}/page/%2e%2e%2fstory.zip",
    ]
    answers = {path: await fetch(shared.local(path)) for path in wrong}
    bodies = {body for _, _, body in answers.values()}
    assert {status for status, _, _ in answers.values()} == {404}, answers
    assert len(bodies) == 1 and b"story" not in next(iter(bodies))
    # the live link still works
    assert (await fetch(shared.reader_url))[2] == good


async def test_a_story_without_pages_reads_as_its_title_and_cast(shared: Shared) -> None:
    thread = Actor("guild", "chan", "thread-9", "ann", "Ann")
    await service.new_story(shared.deps, thread, "Empty yet")
    link = await sharing.share(shared.deps, share_links, thread, "https://x.example")
    status, _, body = await fetch(shared.local("/s/" + link.url.rsplit("/", 1)[1]))
    assert status == 200 and b"Empty yet" in body and b"<img" not in body


async def test_the_clip_and_a_newer_render_are_shown(shared: Shared) -> None:
    await service.add_beat(shared.deps, OWNER, "The lamp turns on by itself.")
    await render_pages(shared.deps, OWNER, shared.out_dir)
    clip = await service.clip(shared.deps, OWNER)
    folder = job_folder(shared.out_dir, clip.id)
    folder.mkdir(parents=True)
    (folder / "story.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    async with shared.db.writing() as uow:
        await uow.jobs.set_status(clip.id, JobStatus.DONE, service.utc_now(), files=["story.mp4"])
    # the content is cached for a moment (Reader.content_ttl_s)
    await _wait_until(lambda page: b"/clip" in page, shared.reader_url)
    status, headers, body = await fetch(shared.reader_url + "/clip")
    assert status == 200 and headers["Content-Type"] == "video/mp4" and body.endswith(b"video")
    # a player seeks with Range requests
    async with (
        aiohttp.ClientSession() as session,
        session.get(shared.reader_url + "/clip", headers={"Range": "bytes=4-7"}) as response,
    ):
        assert response.status == 206 and await response.read() == b"ftyp"
    _, _, page = await fetch(shared.reader_url)
    assert b"Panel 5: The lamp turns on by itself." in page


async def _wait_until(check: Callable[[bytes], bool], url: str) -> None:
    async with asyncio.timeout(10):
        while not check((await fetch(url))[2]):
            await asyncio.sleep(0.2)


async def test_files_kept_only_in_the_database_are_served_too(shared: Shared) -> None:
    """The distributed mode: a worker on another machine saved the files in the database
    and the bot side has not written them to its folder."""
    await service.add_beat(shared.deps, OWNER, "A gull lands.")
    elsewhere = shared.out_dir.parent / "worker-out"
    job = await render_pages(shared.deps, OWNER, elsewhere)
    files = sorted(job_folder(elsewhere, job.id).iterdir())
    async with shared.db.writing() as uow:
        await save_artifacts(session_of(uow), job.id, files)
    await _wait_until(lambda page: b"A gull lands" in page, shared.reader_url)
    status, _, body = await fetch(shared.reader_url + "/page/1")
    assert status == 200
    assert body == (job_folder(elsewhere, job.id) / "story-page-01.png").read_bytes()
    assert not job_folder(shared.out_dir, job.id).exists()  # the reader wrote nothing


async def test_too_many_requests_from_one_address_get_429_and_others_are_served(
    shared: Shared, tmp_path: Path
) -> None:
    settings = shared.settings.model_copy(update={"ops_port": free_port(), "reader_burst": 3})
    async with ops_server(settings, "slack"):
        url = f"http://127.0.0.1:{settings.ops_port}/s/{shared.token}"
        statuses = [(await fetch(url))[0] for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
        _, headers, _ = await fetch(url)
        assert int(headers["Retry-After"]) >= 1
        # /healthz is not the reader's: never limited
        assert (await fetch(f"http://127.0.0.1:{settings.ops_port}/healthz"))[0] == 200


async def test_a_worker_serves_no_reader(shared: Shared) -> None:
    settings = shared.settings.model_copy(update={"ops_port": free_port()})
    async with ops_server(settings, "worker"):
        status, _, _ = await fetch(f"http://127.0.0.1:{settings.ops_port}/s/{shared.token}")
    assert status == 404


async def test_retention_spares_what_a_live_link_shows_until_it_is_revoked(
    shared: Shared,
) -> None:
    shown = await shown_jobs(shared.db)
    async with shared.db.reading() as uow:
        page_job = max(j.id for j in await uow.jobs.recent(1, 10) if j.kind.value == "page")
    assert page_job in shown
    # nothing kept, no bytes allowed: only the shown jobs' folders survive the sweep
    sweep_outputs(shared.out_dir, keep_for_s=0, budget_bytes=0, keep=shown)
    assert {p.name for p in shared.out_dir.iterdir()} == {
        job_folder(shared.out_dir, job_id).name for job_id in shown
    }
    status, _, _ = await fetch(shared.reader_url + "/page/1")
    assert status == 200
    await sharing.unshare(shared.deps, share_links, OWNER)
    assert await shown_jobs(shared.db) == frozenset()
    sweep_outputs(shared.out_dir, keep_for_s=0, budget_bytes=0, keep=frozenset())
    assert list(shared.out_dir.iterdir()) == []
