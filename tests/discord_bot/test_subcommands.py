"""Every /story subcommand and job button, driven by raw INTERACTION_CREATE payloads through
the real discord.py code: each defers first, changes what it says, and refuses members who
may not (with one short sentence, changing nothing)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable

from storyloom.generation.renderer import StoryRenderer
from storyloom.storage import SqlDatabase
from storyloom.story.model import JobKind, JobStatus
from tests.job_rows import job_row, until_status

from .fake_discord import FakeDiscord, press, slash
from .harness import ANN, BOB, MOD, THREAD, Running, ask, buttons

THREAD_ID = int(THREAD["id"])


async def story_with(running: Running, fake: FakeDiscord, *beats: tuple[dict, str]) -> None:
    """A story in THREAD owned by Ann, with these (member, text) beats."""
    assert (await ask(running, fake, slash("new", THREAD, ANN, title="T"))).startswith("📖")
    for who, text in beats:
        assert "beat" in await ask(running, fake, slash("add", THREAD, who, text=text))


async def listed(running: Running, fake: FakeDiscord) -> list[str]:
    """The beats' texts, in order, as /story list shows them."""
    lines = (await ask(running, fake, slash("list", THREAD, BOB))).splitlines()
    return [re.sub(r"^` *\d+` | — \w+$", "", line) for line in lines[:-1]]


async def test_remove_move_undo_and_list_change_the_beats_their_authors_ask_to(
    running: Running, fake: FakeDiscord
) -> None:
    await story_with(running, fake, (ANN, "one"), (ANN, "two"), (ANN, "three"), (BOB, "four"))
    assert await ask(running, fake, slash("move", THREAD, ANN, beat=3, to=1)) == ("beat moved to 1")
    assert await listed(running, fake) == ["three", "one", "two", "four"]

    refused = await ask(running, fake, slash("remove", THREAD, BOB, beat=2))
    assert refused == (
        "✗ Beat 2 is Ann's; only they, the story's owner or a moderator can remove it."
    )
    refused = await ask(running, fake, slash("move", THREAD, BOB, beat=1, to=4))
    assert refused.startswith("✗ Beat 1 is Ann's")
    assert await listed(running, fake) == ["three", "one", "two", "four"]  # nothing changed

    assert await ask(running, fake, slash("remove", THREAD, ANN, beat=2)) == "beat 2 removed"
    assert await ask(running, fake, slash("undo", THREAD, ANN)) == "beat 1 removed"  # "three"
    assert await listed(running, fake) == ["two", "four"]
    assert await ask(running, fake, slash("undo", THREAD, BOB)) == "beat 2 removed"
    assert await ask(running, fake, slash("remove", THREAD, MOD, beat=1)) == "beat 1 removed"
    nothing = await ask(running, fake, slash("undo", THREAD, BOB))
    assert nothing == "✗ You have no beats in this story to undo."
    bad = await ask(running, fake, slash("list", THREAD, ANN, page=3))
    assert bad.startswith("✗ Pick a page from 1 to")


async def test_style_status_export_and_delete_are_the_owners_or_a_moderators(
    running: Running, fake: FakeDiscord
) -> None:
    await story_with(running, fake)
    cast = await ask(running, fake, slash("cast", THREAD, ANN, name="Mira", description="a girl"))
    assert cast == "**Mira** is in the cast"
    await ask(running, fake, slash("add", THREAD, BOB, text="[mira] waves # Mira: hi"))

    refused = await ask(running, fake, slash("style", THREAD, BOB, name="noir"))
    assert refused == "✗ Only the story's owner or a moderator can change the style."
    assert await ask(running, fake, slash("style", THREAD, ANN, name="noir")) == (
        "style is now noir"
    )
    status = await ask(running, fake, slash("status", THREAD, BOB))
    assert status.splitlines() == ["**T** · 1 beats", "Mira: no sheet yet (look NAME draws one)"]

    running.send(payload := slash("export", THREAD, BOB))
    [upload] = await fake.wait_for("POST", f"/webhooks/555/{payload['token']}")
    [(name, data)] = upload.uploads
    exported = tomllib.loads(data.decode())
    assert name == "story.toml" and exported["style"] == "noir"
    assert exported["characters"][0]["name"] == "Mira"
    assert exported["panels"][0]["scene"] == "[Mira] waves"

    refused = await ask(running, fake, slash("delete", THREAD, BOB))
    assert refused == "✗ Only the story's owner or a moderator can delete the story."
    assert await ask(running, fake, slash("delete", THREAD, ANN)) == "story **T** deleted"
    gone = await ask(running, fake, slash("status", THREAD, ANN))
    assert gone == "✗ There is no story in this thread yet. Start one with /story new TITLE."


async def test_clip_and_cancel_by_command_only_for_whoever_asked_or_a_moderator(
    running: Running,
    fake: FakeDiscord,
    db: SqlDatabase,
    slow_renderer: Callable[[], StoryRenderer],
) -> None:
    await running.jobs.ready()
    assert running.jobs.worker is not None
    running.jobs.worker.load_renderer = slow_renderer  # still going when it is cancelled
    await story_with(running, fake, (ANN, "a beach"), (ANN, "a boat"))
    assert await ask(running, fake, slash("clip", THREAD, ANN, first=2)) == ("clip job #1 queued")
    [status] = fake.job_posts(f"/channels/{THREAD_ID}/messages")
    assert (status.json or {})["content"] == "⏳ clip job #1 queued — next in line"
    assert buttons(status) == ["story:cancel:1"]
    async with db.reading() as uow:
        job = await uow.jobs.find(1)
    assert job is not None and job.kind == JobKind.CLIP
    assert (job.first_position, job.last_position) == (2, 2)

    mine = await ask(running, fake, slash("cancel", THREAD, BOB))
    assert mine == "✗ You have no queued or running job in this story."
    theirs = await ask(running, fake, slash("cancel", THREAD, BOB, job=1))
    assert theirs.startswith("✗ Only whoever asked for this job")
    assert await ask(running, fake, slash("cancel", THREAD, MOD, job=1)) == "job #1 cancelled"
    again = await ask(running, fake, slash("cancel", THREAD, ANN, job=1))
    assert again == "✗ Job 1 is already cancelled."
    await until_status(db, 1, JobStatus.CANCELLED)
    await running.jobs.drain()
    message = f"/channels/{THREAD_ID}/messages/{status.answer['id']}"
    await fake.wait_for_text("PATCH", message, "✖️ clip job #1 cancelled")


async def test_render_again_and_make_a_clip_buttons_queue_the_same_beats(
    running: Running, fake: FakeDiscord, db: SqlDatabase
) -> None:
    await story_with(running, fake, (ANN, "a beach"), (ANN, "a boat"), (ANN, "a storm"))
    assert await ask(running, fake, slash("render", THREAD, ANN, first=2, last=3)) == (
        "page job #1 queued"
    )
    await running.jobs.drain()
    [result] = await fake.wait_for_uploads(f"/channels/{THREAD_ID}/messages")
    assert buttons(result) == [
        "story:again:j1",
        "story:clip:j1",
        "story:redraw:b2",
        "story:redraw:b3",
    ]
    assert await ask(running, fake, press("story:again:j1", THREAD, BOB)) == ("page job #2 queued")
    assert await ask(running, fake, press("story:clip:j1", THREAD, BOB)) == ("clip job #3 queued")
    async with db.reading() as uow:
        jobs = [await uow.jobs.find(n) for n in (2, 3)]
    assert [
        (j.kind, j.first_position, j.last_position, j.requested_by_name) for j in jobs if j
    ] == [
        (JobKind.PAGE, 2, 3, "Bob"),
        (JobKind.CLIP, 2, 3, "Bob"),
    ]
    posts = fake.job_posts(f"/channels/{THREAD_ID}/messages")
    statuses = [p for p in posts if "queued" in (p.json or {})["content"]][-2:]
    assert [buttons(s) for s in statuses] == [["story:cancel:2"], ["story:cancel:3"]]
    # a button's answer is for the presser only
    answers = fake.where("POST", "/webhooks/555/")[-2:]
    assert all((a.json or {}).get("flags", 0) & 64 for a in answers)


async def test_buttons_act_on_the_beats_they_were_drawn_for_after_moves_and_removals(
    running: Running, fake: FakeDiscord, db: SqlDatabase
) -> None:
    await story_with(running, fake, (ANN, "a beach"), (ANN, "a boat"), (ANN, "a storm"))
    assert await ask(running, fake, slash("render", THREAD, ANN)) == "page job #1 queued"
    # changed while the page waits: it still draws the three beats as they were asked for
    await ask(running, fake, slash("edit", THREAD, ANN, beat=2, text="a sunken boat"))
    await ask(running, fake, slash("move", THREAD, ANN, beat=3, to=1))  # storm, beach, boat
    await running.jobs.drain()
    [result] = await fake.wait_for_uploads(f"/channels/{THREAD_ID}/messages")
    page = await until_status(db, 1, JobStatus.DONE)
    assert [b.text for b in page.beats] == ["a beach", "a boat", "a storm"]
    assert buttons(result)[2:] == ["story:redraw:b1", "story:redraw:b2", "story:redraw:b3"]

    # "Redraw panel 1" is the beach, now at place 2: that beat is redrawn, not the storm
    assert await ask(running, fake, press("story:redraw:b1", THREAD, ANN)) == (
        "panel job #2 queued"
    )
    redraw = await job_row(db, 2)
    assert [(b.id, b.position, b.text) for b in redraw.beats] == [(1, 2, "a beach")]
    # "Render again" draws the same three beats, where and as they are now
    assert await ask(running, fake, press("story:again:j1", THREAD, ANN)) == ("page job #3 queued")
    again = await job_row(db, 3)
    assert [b.text for b in again.beats] == ["a storm", "a beach", "a sunken boat"]
    await running.jobs.drain()  # (a press on the same message while it runs is the same ask)

    # a beat removed since: its button says so, and nothing else is redrawn or rendered
    await ask(running, fake, slash("remove", THREAD, ANN, beat=1))  # the storm (beat id 3)
    gone = await ask(running, fake, press("story:redraw:b3", THREAD, ANN))
    assert gone == "✗ That beat was removed; it has no panel to draw again."
    refused = await ask(running, fake, press("story:again:j1", THREAD, ANN))
    assert refused == (
        "✗ 1 of the beats that page drew was removed since; "
        "use /story render for the story as it is now."
    )
    old = await ask(running, fake, press("story:again:2-3", THREAD, ANN))  # before beat ids
    assert old == "✗ That button is from an older storyloom; use /story render or /story redraw."
    async with db.reading() as uow:
        assert await uow.jobs.find(4) is None  # nothing was queued for any of them
