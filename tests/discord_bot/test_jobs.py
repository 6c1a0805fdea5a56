"""Render jobs on Discord through the real discord.py code and the real job runtime: one
status message (place in line → progress → outcome) edited in place, the multipart upload
of the page with its credits and buttons, character sheets, and panel redraws."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import update

from storyloom.generation.renderer import StoryRenderer
from storyloom.jobs.events import JobEvent
from storyloom.storage import SqlDatabase
from storyloom.storage.tables import OwedMessageRow
from storyloom.storage.unit_of_work import session_of
from storyloom.story.model import JobKind, JobStatus
from tests.job_rows import job_row, owed_state, until_status

from .fake_discord import FakeDiscord, press, slash
from .harness import ANN, BOB, MOD, THREAD, Running, ask, buttons

THREAD_ID = int(THREAD["id"])
POSTS = f"/channels/{THREAD_ID}/messages"


def contents(calls: list) -> list[str]:
    return [(c.json or {}).get("content", "") for c in calls]


async def test_a_render_is_one_message_edited_in_place_into_the_page_with_credits(
    running: Running, fake: FakeDiscord
) -> None:
    await ask(running, fake, slash("new", THREAD, ANN, title="Lighthouse"))
    await ask(running, fake, slash("cast", THREAD, ANN, name="Mira", description="a girl"))
    await ask(running, fake, slash("add", THREAD, ANN, text='[Mira] waves # Mira: "Hi!"'))
    await ask(running, fake, slash("add", THREAD, MOD, text="[Mira] sleeps"))
    assert await ask(running, fake, slash("render", THREAD, BOB)) == "page job #1 queued"
    await running.jobs.drain()
    [result] = await fake.wait_for_uploads(POSTS)

    # what the thread sees of a render: one message, the status message, which ends as the
    # result (the requester's "queued" is private)
    [status] = fake.job_posts(POSTS)
    assert (status.json or {})["content"] == "⏳ page job #1 queued — next in line"
    edits = [c for c in fake.where("PATCH", "/messages/")]
    assert {c.path for c in edits} == {f"{POSTS}/{status.answer['id']}"}  # only that message
    assert result is edits[-1]  # the last word on it is the outcome, files and all
    texts = contents(edits)
    assert texts[0] == "🎨 page job #1 running"
    assert buttons(edits[0]) == ["story:cancel:1"]
    # before it: at most a progress preview, never a result
    assert all(name == "preview.jpg" for c in edits[:-1] for name, _ in c.files)

    names = [name for name, _ in result.files]
    assert names == ["story-page-01.png", "story.pdf", "story.zip"]
    assert result.uploads[0][1].startswith(b"\x89PNG")
    # every image says what it shows, from the beats (the attachment's alt text)
    described = {a["description"] for a in (result.json or {})["attachments"]}
    assert described == {
        'Comic page of “Lighthouse”, 2 panels: 1. Mira waves: Mira: "Hi!"; 2. Mira sleeps'
    }
    content = (result.json or {})["content"]
    assert content.splitlines() == [
        "✅ page job #1 done",
        "**Lighthouse** — page for Bob · job #1",
        "beats by Ann, Mo",
    ]
    assert (result.json or {})["allowed_mentions"]["parse"] == []
    assert buttons(result) == [
        "story:again:j1",
        "story:clip:j1",
        "story:redraw:b1",
        "story:redraw:b2",
    ]
    labels = [b["label"] for row in (result.json or {})["components"] for b in row["components"]]
    assert labels[2:] == ["Redraw panel 1", "Redraw panel 2"]


async def test_a_panel_is_redrawn_by_command_or_button_and_only_by_its_beats_author(
    running: Running, fake: FakeDiscord, db: SqlDatabase
) -> None:
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    await ask(running, fake, slash("add", THREAD, ANN, text="a beach"))
    await ask(running, fake, slash("add", THREAD, BOB, text="a boat"))
    refused = await ask(running, fake, slash("redraw", THREAD, BOB, beat=1))
    assert (
        # the sentence is escaped for Discord: the backslash before the hyphen is not shown
        refused
        == "✗ Beat 1 is Ann's; only they, the story's owner or a moderator can re\\-roll it."
    )
    assert (await job_row_or_none(db, 1)) is None  # nothing was queued

    assert await ask(running, fake, slash("redraw", THREAD, ANN, beat=1)) == "panel job #1 queued"
    await running.jobs.drain()
    [result] = await fake.wait_for_uploads(POSTS)
    assert [name for name, _ in result.files] == ["panel-1.png"]
    assert buttons(result) == ["story:redraw:b1", "story:again:-"]
    job = await job_row(db, 1)
    assert (job.kind, job.first_position, job.last_position) == (JobKind.PANEL, 1, 1)

    pressed = await ask(running, fake, press("story:redraw:1", THREAD, BOB))  # not Bob's beat
    assert pressed.startswith("✗ Beat 1 is Ann's")
    assert await ask(running, fake, press("story:redraw:2", THREAD, BOB)) == "panel job #2 queued"
    assert await ask(running, fake, press("story:redraw:1", THREAD, MOD)) == "panel job #3 queued"
    async with db.reading() as uow:
        beats = await uow.beats.page(job.story_id, 0, 2)
    assert [b.variant for b in beats] == [2, 1]  # each redraw gave its panel a new seed


async def test_a_double_click_on_a_button_queues_one_job_and_answers_both_presses(
    running: Running, fake: FakeDiscord, db: SqlDatabase
) -> None:
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    await ask(running, fake, slash("add", THREAD, ANN, text="a beach"))
    first = press("story:redraw:1", THREAD, ANN)
    second = press("story:redraw:1", THREAD, ANN)  # a new interaction on the same message
    second["message"] = first["message"]
    assert second["id"] != first["id"]
    assert await ask(running, fake, first) == "panel job #1 queued"
    assert await ask(running, fake, second) == "panel job #1 queued"
    statuses = [c for c in fake.job_posts(POSTS) if "⏳" in (c.json or {}).get("content", "")]
    assert len(statuses) == 1  # one status message for the one job
    other = press("story:redraw:1", THREAD, MOD)  # someone else's press is their own
    other["message"] = first["message"]
    assert await ask(running, fake, other) == "panel job #2 queued"
    async with db.reading() as uow:
        jobs = await uow.jobs.recent((await job_row(db, 1)).story_id, 10)
        beats = await uow.beats.page(jobs[0].story_id, 0, 1)
    assert [j.id for j in jobs] == [2, 1] and beats[0].variant == 2


async def job_row_or_none(db: SqlDatabase, job_id: int) -> object:
    async with db.reading() as uow:
        return await uow.jobs.find(job_id)


async def test_a_character_sheet_gets_lock_and_try_another_buttons_for_allowed_members(
    running: Running, fake: FakeDiscord
) -> None:
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    await ask(running, fake, slash("cast", THREAD, ANN, name="Mira", description="a girl"))
    assert await ask(running, fake, slash("look", THREAD, ANN, name="Mira")) == (
        "sheet job #1 queued"
    )
    await running.jobs.drain()
    [sheet] = await fake.wait_for_uploads(POSTS)
    status = fake.job_posts(POSTS)[0]
    assert buttons(status) == ["story:cancel:1"]  # a sheet can be cancelled while it renders
    # one image, named for the character and labelled on it, described for screen readers
    assert [name for name, _ in sheet.files] == ["mira-sheet.png"]
    [attachment] = (sheet.json or {})["attachments"]
    assert attachment["description"] == "Character sheet of Mira for the comic “T”"
    assert buttons(sheet) == ["story:lock:Mira", "story:reroll:Mira"]

    assert await ask(running, fake, press("story:lock:Mira", THREAD, ANN)) == (
        "Mira's look is locked"
    )
    refused = await ask(running, fake, press("story:reroll:Mira", THREAD, BOB))  # Ann cast her
    assert refused.startswith("✗ Mira's look is locked; only whoever cast them")
    by_command = await ask(running, fake, slash("look", THREAD, ANN, name="Mira", action="reroll"))
    assert by_command == "reroll job #2 queued"
    await running.jobs.drain()
    again = (await fake.wait_for_uploads(POSTS, 2))[-1]
    assert again.files[0] == ("mira-sheet.png", again.files[0][1])
    assert buttons(again) == ["story:lock:Mira", "story:reroll:Mira"]


async def test_the_status_message_shows_the_place_in_line_moves_up_and_says_cancelled(
    running: Running,
    fake: FakeDiscord,
    db: SqlDatabase,
    slow_renderer: Callable[[], StoryRenderer],
) -> None:
    await running.jobs.ready()
    assert running.jobs.worker is not None
    running.jobs.worker.load_renderer = slow_renderer  # job 1 keeps the worker busy
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    await ask(running, fake, slash("add", THREAD, ANN, text="a beach"))
    await ask(running, fake, slash("render", THREAD, ANN))
    await until_status(db, 1, JobStatus.RUNNING)
    await ask(running, fake, slash("render", THREAD, BOB))
    await ask(running, fake, slash("clip", THREAD, MOD))
    statuses = fake.job_posts(POSTS)
    assert contents(statuses) == [
        "⏳ page job #1 queued — next in line",
        "⏳ page job #2 queued — next in line",
        "⏳ clip job #3 queued — 2 in line, 1 ahead",
    ]
    message = {n: f"{POSTS}/{c.answer['id']}" for n, c in enumerate(statuses, start=1)}

    assert await ask(running, fake, slash("cancel", THREAD, BOB)) == "job #2 cancelled"
    await running.jobs.watcher.poll()
    assert await ask(running, fake, slash("cancel", THREAD, ANN, job=1)) == "job #1 cancelled"
    await until_status(db, 1, JobStatus.CANCELLED)
    await ask(running, fake, slash("cancel", THREAD, MOD, job=3))
    await running.jobs.drain()
    for job, kind in ((1, "page"), (2, "page"), (3, "clip")):
        await fake.wait_for_text("PATCH", message[job], f"✖️ {kind} job #{job} cancelled")

    def edits_of(job: int) -> list[str]:
        return contents([c for c in fake.where("PATCH", "/messages/") if c.path == message[job]])

    assert edits_of(2) == ["✖️ page job #2 cancelled"]  # cancelled while it waited
    assert edits_of(3)[0] == "⏳ clip job #3 queued — next in line"  # moved up
    assert edits_of(3)[-1] == "✖️ clip job #3 cancelled"
    assert edits_of(1)[-1] == "✖️ page job #1 cancelled"  # stopped while it rendered
    last = [c for c in fake.where("PATCH", "/messages/") if c.path == message[1]][-1]
    assert buttons(last) == ["story:again:j1"]  # ask again


async def test_progress_shows_panel_percent_and_time_left_at_most_every_few_seconds(
    running: Running, fake: FakeDiscord, renderer: StoryRenderer
) -> None:
    jobs = running.jobs
    await jobs.ready()
    assert jobs.worker is not None
    # one panel at a time: three panels of two steps make six step reports, each written
    one_by_one = replace(renderer.settings, max_batch=1)
    jobs.worker.load_renderer = lambda: StoryRenderer(renderer.loaded, one_by_one, None)
    jobs.worker.progress_every_s = 0
    jobs.worker.preview_every_s = 0  # a preview with every report; the notifier throttles
    heard: list[JobEvent] = []
    notifier = running.bot.notifier

    shows = notifier.show

    async def recording(event: JobEvent) -> None:  # what the outbox hands the notifier
        heard.append(event)
        await shows(event)

    notifier.show = recording  # type: ignore[method-assign]
    ticks = itertools.count()
    notifier.clock = lambda: float(next(ticks))  # each report comes one second after the last
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    for text in ("a beach", "a boat", "a storm"):
        await ask(running, fake, slash("add", THREAD, ANN, text=text))
    await ask(running, fake, slash("render", THREAD, ANN))
    await jobs.drain()
    await fake.wait_for_text("PATCH", "/messages/", "✅ page job #1 done")

    reports = [e.progress for e in heard if e.progress is not None]
    assert reports, "the watcher reported no progress"
    texts = contents(fake.where("PATCH", "/messages/"))
    shown = [t for t in texts if "%" in t]
    assert len(shown) == len(range(0, len(reports), 3))  # at t = 0, 3, 6, … s
    for text in shown:
        assert re.fullmatch(
            r"🎨 page job #1 running — [▰▱]{10} panel [1-3] of 3, \d+%(, about \d+ s left)?", text
        )
    assert texts[0] == "🎨 page job #1 running"
    assert texts[-1].splitlines()[0] == "✅ page job #1 done"

    # a preview of the latents rides on the throttled edits, each a new image; the outcome
    # replaces it with the page
    edits = fake.where("PATCH", "/messages/")
    previews = [c for c in edits[:-1] if c.files]
    assert previews and all(c.files[0][0] == "preview.jpg" for c in previews)
    assert all(c.uploads[0][1].startswith(b"\xff\xd8") for c in previews)  # JPEG
    assert len({bytes(c.uploads[0][1]) for c in previews}) == len(previews)  # each new
    assert all("%" in (c.json or {}).get("content", "") for c in previews)  # progress edits
    [alt] = [a["description"] for a in (previews[0].json or {})["attachments"]]
    assert alt == "Preview of page job #1 while it renders"
    assert edits[-1].files[0][0] == "story-page-01.png"


async def test_two_presses_at_once_post_one_status_message(
    running: Running, fake: FakeDiscord
) -> None:
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    await ask(running, fake, slash("add", THREAD, ANN, text="a beach"))
    first = press("story:again:-", THREAD, ANN)
    second = press("story:again:-", THREAD, ANN)  # the same message, clicked twice at once
    second["message"] = first["message"]
    running.send(first)
    running.send(second)  # before the first has been answered
    for payload in (first, second):
        [answer] = await fake.wait_for("POST", f"/webhooks/555/{payload['token']}")
        assert (answer.json or {}).get("content") == "page job #1 queued"
    statuses = [c for c in fake.where("POST", POSTS) if "⏳" in (c.json or {}).get("content", "")]
    assert len(statuses) == 1


async def test_a_repeated_interaction_adds_its_beat_once(
    running: Running, fake: FakeDiscord, db: SqlDatabase
) -> None:
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    add = slash("add", THREAD, ANN, text="a beach")
    running.send(add)
    running.send(add)  # Discord delivers the same interaction again
    await fake.wait_for("POST", f"/webhooks/555/{add['token']}", 2)
    async with db.reading() as uow:
        story = await uow.stories.by_id(1)
        assert story is not None
        assert await uow.beats.count(story.id) == 1


async def _as_if_cut_short(db: SqlDatabase, job_id: int, started: str) -> None:
    """As if the bot died after a step began, before it was recorded as made."""
    async with db.writing() as uow:
        await session_of(uow).execute(
            update(OwedMessageRow)
            .where(OwedMessageRow.job_id == job_id)
            .values(state="pending", done="", started=started)
        )


async def test_a_result_edit_begun_before_a_crash_is_made_again_and_ends_the_same(
    running: Running, fake: FakeDiscord, db: SqlDatabase
) -> None:
    await ask(running, fake, slash("new", THREAD, ANN, title="T"))
    await ask(running, fake, slash("add", THREAD, ANN, text="a beach"))
    await ask(running, fake, slash("render", THREAD, ANN))
    await running.jobs.drain()
    [first] = await fake.wait_for_uploads(POSTS)
    await _as_if_cut_short(db, 1, "outcome")  # Discord may or may not have taken the edit
    await running.jobs.watcher.poll()
    first_again, again = fake.uploads_to(POSTS)
    assert first_again is first and again.method == "PATCH" and again.path == first.path
    assert again.files == first.files and again.json == first.json  # the same message
    assert not [c for c in fake.where("POST", POSTS) if c.files]  # never a second post
    assert await owed_state(db, 1) == "delivered"
