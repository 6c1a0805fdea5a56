"""Results within the channel's upload limit, through the real discord.py upload: a page
over the limit is sent as a smaller JPEG, a clip is re-encoded, and what truly cannot fit
is named in the post; nothing over the limit is ever attached."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
from PIL import Image

from storyloom.bot.discord.fit import video_facts
from storyloom.bot.discord.status import StatusRef
from storyloom.generation.clip import ClipSpec, build_clip
from storyloom.generation.layout import PagePanel
from storyloom.jobs.courier import Owed
from storyloom.storage import SqlDatabase
from storyloom.story.model import JobKind, JobStatus, RenderJob, ThreadKey
from storyloom.story.service import utc_now

from .fake_discord import GUILD_ID, Call, FakeDiscord, slash
from .harness import ANN, THREAD, Running, ask

THREAD_ID = int(THREAD["id"])


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    """An image no encoder can pack small: the worst case for a page's size."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


async def finished_job(
    running: Running, fake: FakeDiscord, db: SqlDatabase, kind: JobKind
) -> RenderJob:
    """A page (or clip) job of a one-beat story, its outcome already reported, as the
    watcher hands it to the notifier (the worker never sees it: its files are the test's)."""
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    await ask(running, fake, slash("add", THREAD, ANN, text="a beach"))
    async with db.writing() as uow:
        story = await uow.stories.get(ThreadKey(str(GUILD_ID), THREAD["parent_id"], THREAD["id"]))
        assert story is not None
        job = await uow.jobs.add(
            story.id, kind, "11", "Ann", utc_now(), first_position=1, last_position=1
        )
        await uow.jobs.set_status(job.id, JobStatus.DONE, utc_now())
        await uow.jobs.mark_posted(job.id)
        done = await uow.jobs.find(job.id)
    assert done is not None
    return done


async def result_post(
    running: Running, fake: FakeDiscord, job: RenderJob, limit: int, *files: Path
) -> Call:
    """The post the notifier makes of these files under this upload limit."""
    job = dataclasses.replace(job, status_ref=StatusRef(THREAD_ID, 123, limit).encode())

    async def recorded(step: str) -> None:
        pass

    owed = Owed(job, files, frozenset(), frozenset(), recorded, recorded)
    await running.bot.notifier.settle(owed)
    # the status message (123) edited into the result: one message per render
    return fake.where("PATCH", f"/channels/{THREAD_ID}/messages/123")[-1]


async def test_a_deleted_status_message_gets_the_result_posted_once_even_after_a_crash(
    running: Running, fake: FakeDiscord, db: SqlDatabase, tmp_path: Path
) -> None:
    job = await finished_job(running, fake, db, JobKind.PAGE)
    job = dataclasses.replace(job, status_ref=StatusRef(THREAD_ID, 123, 10_000_000).encode())
    page = tmp_path / "story-page-01.png"
    noise(64, 64).save(page)
    fake.deleted.add("123")  # a moderator deleted the status message while it rendered
    made: list[str] = []

    async def recorded(step: str) -> None:
        made.append(step)

    await running.bot.notifier.settle(Owed(job, (page,), frozenset(), frozenset(), *[recorded] * 2))
    posts = f"/channels/{THREAD_ID}/messages"
    [post] = [c for c in fake.where("POST", posts) if c.files]
    assert f"job #{job.id}" in (post.json or {})["content"]
    assert made == ["outcome", "outcome"]  # begun, then made
    # a crash after the post but before it was recorded: the retry finds it, posts nothing
    retried = Owed(job, (page,), frozenset(), frozenset({"outcome"}), recorded, recorded)
    await running.bot.notifier.settle(retried)
    assert [c for c in fake.where("POST", posts) if c.files] == [post]


async def test_an_over_limit_page_is_sent_as_a_smaller_jpeg_within_the_limit(
    running: Running, fake: FakeDiscord, db: SqlDatabase, tmp_path: Path
) -> None:
    job = await finished_job(running, fake, db, JobKind.PAGE)
    page, pdf = tmp_path / "story-page-01.png", tmp_path / "story.pdf"
    noise(900, 1200).save(page)
    pdf.write_bytes(b"%PDF" + bytes(20_000))
    limit = 500_000  # under a full-size JPEG of this page, too
    assert page.stat().st_size > limit  # the page alone is over the limit
    post = await result_post(running, fake, job, limit, page, pdf)
    assert [name for name, _ in post.files] == ["story-page-01.jpg", "story.pdf"]
    assert sum(size for _, size in post.files) <= limit
    sent = Image.open(io.BytesIO(post.uploads[0][1]))
    assert sent.format == "JPEG" and sent.width < 900
    assert abs(sent.width / sent.height - 900 / 1200) < 0.01  # smaller, not cropped
    content = (post.json or {})["content"]
    assert "story-page-01.png was sent smaller" in content and "not attached" not in content


async def test_a_clip_over_the_limit_is_re_encoded_smaller_and_still_plays_inline(
    running: Running, fake: FakeDiscord, db: SqlDatabase, tmp_path: Path
) -> None:
    job = await finished_job(running, fake, db, JobKind.CLIP)
    panels = [PagePanel.from_beat("a beach", noise(256, 256, seed), seed=seed) for seed in (1, 2)]
    clip = build_clip(panels, tmp_path / "story.mp4", ClipSpec(width=640, height=360)).path
    limit = clip.stat().st_size // 3
    post = await result_post(running, fake, job, limit, clip)
    [(name, data)] = post.uploads
    assert name == "story.mp4" and len(data) <= limit
    sent = tmp_path / "sent.mp4"
    sent.write_bytes(data)
    width, height, seconds = video_facts(sent)
    assert (width, height) <= (640, 360) and abs(seconds - video_facts(clip)[2]) < 0.2
    import imageio_ffmpeg

    frames = imageio_ffmpeg.read_frames(str(sent))
    meta = next(frames)
    frames.close()
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert data.find(b"moov") < data.find(b"mdat")  # faststart: plays while it loads


async def test_what_truly_cannot_fit_is_named_in_the_post_and_never_attached(
    running: Running, fake: FakeDiscord, db: SqlDatabase, tmp_path: Path
) -> None:
    job = await finished_job(running, fake, db, JobKind.PAGE)
    page, archive = tmp_path / "story-page-01.png", tmp_path / "story.zip"
    noise(900, 1200).save(page)
    archive.write_bytes(bytes(5000))
    post = await result_post(running, fake, job, 2000, page, archive)  # no page fits in 2 KB
    assert post.files == [] and post.uploads == []
    content = (post.json or {})["content"]
    assert "story-page-01.png (3.1 MiB) is over this channel's 2 KiB upload limit" in content
    assert "story.zip (5 KiB) is over this channel's 2 KiB upload limit" in content
    assert "not attached" in content


async def test_the_channels_upload_limit_from_the_interaction_decides_what_is_attached(
    running: Running, fake: FakeDiscord
) -> None:
    limit = 300_000
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    await ask(running, fake, slash("add", THREAD, ANN, text="a beach"))
    await ask(running, fake, slash("render", THREAD, ANN, limit=limit))  # the channel's limit
    await running.jobs.drain()
    [result] = await fake.wait_for_uploads(f"/channels/{THREAD_ID}/messages")
    page = running.jobs.delivery.out_dir / "job-1" / "story-page-01.png"
    assert page.stat().st_size > limit  # the rendered page alone is over this limit
    assert result.files[0][0] == "story-page-01.jpg"
    assert sum(size for _, size in result.files) <= limit
    assert "story.zip" in (result.json or {})["content"]  # the ZIP holds the PNG: no room
