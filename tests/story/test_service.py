"""The use cases against in-memory fakes: behaviour, permissions, limits, isolation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from storyloom.story import service
from storyloom.story.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LimitExceeded,
    NotFound,
    UnknownCharacter,
)
from storyloom.story.limits import MAX_BEATS, MAX_CHARACTERS
from storyloom.story.model import JobKind, JobStatus, LockState
from storyloom.story.service import Deps

from .conftest import member
from .fakes import FakeDatabase, FakeQueue

ANN, BOB = member("Ann"), member("Bob")
MOD = member("Mod", moderator=True)


async def _story(deps: Deps, *beats: str) -> None:
    await service.new_story(deps, ANN, "The Lighthouse")
    await service.cast_character(deps, ANN, "Mira", "a girl in a green raincoat")
    for text in beats:
        await service.add_beat(deps, BOB, text)


async def _texts(deps: Deps) -> list[str]:
    page = await service.list_beats(deps, ANN, per_page=50)
    return [b.text for b in page.beats]


async def test_new_story_belongs_to_its_creator_with_default_style(deps: Deps) -> None:
    story = await service.new_story(deps, ANN, "  The Lighthouse ")
    assert (story.title, story.owner_id, story.style) == ("The Lighthouse", ANN.member_id, "comic")


async def test_second_story_in_a_thread_is_a_conflict(deps: Deps) -> None:
    await service.new_story(deps, ANN, "One")
    with pytest.raises(Conflict):
        await service.new_story(deps, BOB, "Two")


async def test_beats_are_numbered_in_order_of_adding(deps: Deps) -> None:
    await _story(deps, "one", "[Mira] two", "three")
    page = await service.list_beats(deps, ANN)
    assert [(b.position, b.text) for b in page.beats] == [(1, "one"), (2, "[Mira] two"),
                                                          (3, "three")]  # fmt: skip
    assert page.beats[1].author_name == "Bob"


async def test_unknown_character_error_lists_the_cast(deps: Deps) -> None:
    await _story(deps)
    await service.cast_character(deps, ANN, "Old Tom", "a keeper")
    with pytest.raises(UnknownCharacter) as error:
        await service.add_beat(deps, BOB, "[Mira] meets [Gull]")
    assert "Gull" in error.value.message
    assert "Mira, Old Tom" in error.value.message


async def test_tags_match_the_cast_case_insensitively(deps: Deps) -> None:
    await _story(deps, "[mira] waves")
    assert await _texts(deps) == ["[mira] waves"]


async def test_authors_edit_their_own_beats_only(deps: Deps) -> None:
    await _story(deps, "bob's beat")
    carl = member("Carl")
    with pytest.raises(Forbidden):
        await service.edit_beat(deps, carl, 1, "hijacked")
    edited = await service.edit_beat(deps, BOB, 1, "bob's better beat")
    assert edited.edited_at is not None
    assert await _texts(deps) == ["bob's better beat"]


@pytest.mark.parametrize("manager", [ANN, MOD], ids=["owner", "moderator"])
async def test_owner_and_moderators_edit_and_remove_anything(deps: Deps, manager) -> None:
    await _story(deps, "a", "b")
    await service.edit_beat(deps, manager, 1, "A")
    await service.remove_beat(deps, manager, 2)
    assert await _texts(deps) == ["A"]


async def test_others_cannot_remove_move_or_delete(deps: Deps) -> None:
    await _story(deps, "a", "b")
    carl = member("Carl")
    for call in (
        service.remove_beat(deps, carl, 1),
        service.move_beat(deps, carl, 1, 2),
        service.delete_story(deps, carl),
        service.delete_story(deps, BOB),
        service.set_style(deps, BOB, "manga"),
    ):
        with pytest.raises(Forbidden):
            await call
    assert await _texts(deps) == ["a", "b"]


async def test_remove_and_move_keep_positions_contiguous(deps: Deps) -> None:
    await _story(deps, "a", "b", "c", "d")
    await service.move_beat(deps, BOB, 1, 3)
    assert await _texts(deps) == ["b", "c", "a", "d"]
    await service.move_beat(deps, BOB, 4, 1)
    assert await _texts(deps) == ["d", "b", "c", "a"]
    await service.remove_beat(deps, BOB, 2)
    page = await service.list_beats(deps, ANN)
    assert [(b.position, b.text) for b in page.beats] == [(1, "d"), (2, "c"), (3, "a")]


async def test_undo_removes_only_my_latest_beat(deps: Deps) -> None:
    await _story(deps, "bob 1", "bob 2")
    await service.add_beat(deps, ANN, "ann 1")
    undone = await service.undo_beat(deps, BOB)
    assert undone.text == "bob 2"
    assert await _texts(deps) == ["bob 1", "ann 1"]
    with pytest.raises(NotFound):
        await service.undo_beat(deps, member("Carl"))


async def test_list_is_paged(deps: Deps) -> None:
    await _story(deps, *[f"beat {i}" for i in range(1, 24)])
    page = await service.list_beats(deps, ANN, page=3, per_page=10)
    assert (page.pages, page.total) == (3, 23)
    assert [b.position for b in page.beats] == [21, 22, 23]
    with pytest.raises(InvalidInput):
        await service.list_beats(deps, ANN, page=4, per_page=10)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", InvalidInput),
        ("   ", InvalidInput),
        ("x" * 501, LimitExceeded),
        ("null \x00 byte", InvalidInput),
        ("[Mira] [A] [B] [C] [D]", LimitExceeded),
        ("[Nobody] here", UnknownCharacter),
    ],
)
async def test_bad_beats_change_nothing(deps: Deps, database: FakeDatabase, text: str,
                                        error: type[Exception]) -> None:  # fmt: skip
    await _story(deps, "kept")
    before = (database.state, database.commits)
    with pytest.raises(error):
        await service.add_beat(deps, BOB, text)
    with pytest.raises(error):
        await service.edit_beat(deps, BOB, 1, text)
    assert (database.state, database.commits) == before


async def test_beat_of_exactly_500_characters_is_accepted(deps: Deps) -> None:
    await _story(deps, "z" * 500)
    assert await _texts(deps) == ["z" * 500]


async def test_story_holds_at_most_300_beats(deps: Deps) -> None:
    await _story(deps, *["b"] * MAX_BEATS)
    with pytest.raises(LimitExceeded, match="300"):
        await service.add_beat(deps, BOB, "one too many")
    assert len((await service.export(deps, ANN)).beats) == MAX_BEATS


async def test_cast_limits_and_names(deps: Deps) -> None:
    await service.new_story(deps, ANN, "T")
    for i in range(MAX_CHARACTERS):
        await service.cast_character(deps, ANN, f"Hero {i}", "someone")
    with pytest.raises(LimitExceeded):
        await service.cast_character(deps, ANN, "Ninth", "someone")
    for bad in ("", "x" * 33, "Bob!", "a_b", "<@everyone>"):
        with pytest.raises(InvalidInput):
            await service.cast_character(deps, ANN, bad, "someone")


async def test_recasting_updates_and_unlocks_and_is_for_the_creator(deps: Deps) -> None:
    await _story(deps)
    with pytest.raises(Forbidden):
        await service.cast_character(deps, BOB, "mira", "someone else")
    updated = await service.cast_character(deps, ANN, "MIRA", "a girl with a kite")
    assert (updated.name, updated.description) == ("Mira", "a girl with a kite")


async def test_lock_renders_a_sheet_first_then_locks(deps: Deps, database: FakeDatabase,
                                                     queue: FakeQueue) -> None:  # fmt: skip
    await _story(deps)
    first = await service.lock_look(deps, BOB, "Mira")
    assert first.job is not None and first.job.kind is JobKind.SHEET
    assert queue.submitted == [first.job.id] and queue.committed_when_submitted == [True]
    # The worker (a later issue) marks the sheet rendered; here the fake stands in for it.
    character = first.character
    database.state.characters[character.id] = replace(
        character, lock_state=LockState.SHEET_RENDERED
    )
    locked = await service.lock_look(deps, BOB, "Mira")
    assert locked.job is None and locked.character.lock_state is LockState.LOCKED
    with pytest.raises(Conflict):
        await service.lock_look(deps, BOB, "Mira")
    with pytest.raises(Forbidden):
        await service.reroll_look(deps, BOB, "Mira")
    rerolled = await service.reroll_look(deps, ANN, "Mira")
    assert rerolled.character.lock_state is LockState.DRAFT
    assert rerolled.character.seed != character.seed
    assert rerolled.job is not None and rerolled.job.kind is JobKind.REROLL


async def test_set_style_checks_the_given_styles_and_unlocks_looks(deps: Deps) -> None:
    await _story(deps)
    with pytest.raises(InvalidInput, match="comic, manga, watercolor"):
        await service.set_style(deps, ANN, "vaporwave")
    story = await service.set_style(deps, ANN, "manga")
    assert story.style == "manga"
    assert (await service.status(deps, ANN)).story.style == "manga"


async def test_render_records_then_queues_a_job_for_a_range(deps: Deps, queue: FakeQueue) -> None:
    await _story(deps, "a", "b", "c")
    job = await service.render(deps, BOB, 2, 3)
    assert (job.kind, job.status, job.first_position, job.last_position) == (
        JobKind.PAGE, JobStatus.QUEUED, 2, 3)  # fmt: skip
    whole = await service.clip(deps, BOB)
    assert (whole.kind, whole.first_position, whole.last_position) == (JobKind.CLIP, 1, 3)
    assert queue.submitted == [job.id, whole.id]
    assert queue.committed_when_submitted == [True, True]
    for first, last in ((0, 1), (2, 1), (1, 4)):
        with pytest.raises(InvalidInput):
            await service.render(deps, BOB, first, last)
    assert len(queue.submitted) == 2


async def test_render_of_an_empty_story_is_refused(deps: Deps, queue: FakeQueue) -> None:
    await _story(deps)
    with pytest.raises(InvalidInput, match="no beats"):
        await service.render(deps, ANN)
    assert queue.submitted == []


async def test_a_panel_reroll_raises_the_beats_variant_and_queues_one_panel(
    deps: Deps, queue: FakeQueue
) -> None:
    await _story(deps, "a", "[Mira] b", "c")
    job = await service.reroll_panel(deps, BOB, 2)  # Bob wrote beat 2
    assert (job.kind, job.first_position, job.last_position) == (JobKind.PANEL, 2, 2)
    again = await service.reroll_panel(deps, ANN, 2)  # the owner may too
    assert queue.submitted == [job.id, again.id]
    variants = [b.variant for b in (await service.list_beats(deps, ANN)).beats]
    assert variants == [0, 2, 0]


async def test_a_panel_reroll_by_someone_else_or_of_no_beat_changes_nothing(
    deps: Deps, database: FakeDatabase, queue: FakeQueue
) -> None:
    await _story(deps, "a")
    before = database.commits
    with pytest.raises(Forbidden, match="re-roll"):
        await service.reroll_panel(deps, member("Carl"), 1)
    with pytest.raises(NotFound, match="beats 1–1"):
        await service.reroll_panel(deps, BOB, 2)
    assert database.commits == before and queue.submitted == []
    assert [b.variant for b in (await service.list_beats(deps, ANN)).beats] == [0]


async def test_a_repeated_request_returns_its_first_job_and_changes_nothing_more(
    deps: Deps, queue: FakeQueue
) -> None:
    await _story(deps, "a", "[Mira] b")
    page = await service.render(deps, BOB, request_key="interaction-1")
    assert await service.render(deps, BOB, request_key="interaction-1") == page
    assert (await service.clip(deps, BOB, request_key="interaction-1")).id == page.id
    other = await service.render(deps, BOB, request_key="interaction-2")
    redraw = await service.reroll_panel(deps, BOB, 2, request_key="press-1")
    assert await service.reroll_panel(deps, BOB, 2, request_key="press-1") == redraw
    look = await service.reroll_look(deps, ANN, "Mira", request_key="press-2")
    again = await service.reroll_look(deps, ANN, "Mira", request_key="press-2")
    assert again.job == look.job and again.character.seed == look.character.seed
    assert queue.submitted == [page.id, other.id, redraw.id, look.job.id if look.job else -1]
    assert [b.variant for b in (await service.list_beats(deps, ANN)).beats] == [0, 1]

    await service.cancel(deps, BOB, page.id)  # once it has ended, asking again is a new job
    later = await service.render(deps, BOB, request_key="interaction-1")
    assert later.id not in (page.id, other.id) and queue.submitted[-1] == later.id


async def test_cancel_rules(deps: Deps) -> None:
    await _story(deps, "a")
    job = await service.render(deps, BOB)
    with pytest.raises(Forbidden):
        await service.cancel(deps, member("Carl"), job.id)
    cancelled = await service.cancel(deps, BOB)
    assert cancelled.id == job.id and cancelled.status is JobStatus.CANCELLED
    with pytest.raises(Conflict):
        await service.cancel(deps, ANN, job.id)
    with pytest.raises(NotFound):
        await service.cancel(deps, BOB)
    overview = await service.status(deps, ANN)
    assert [j.status for j in overview.jobs] == [JobStatus.CANCELLED]


async def test_delete_story_removes_everything(deps: Deps, database: FakeDatabase) -> None:
    await _story(deps, "[Mira] a")
    await service.render(deps, BOB)
    await service.delete_story(deps, MOD)
    assert (database.state.beats, database.state.characters, database.state.jobs) == ({}, {}, {})
    with pytest.raises(NotFound):
        await service.list_beats(deps, ANN)
    await service.new_story(deps, BOB, "A fresh start")


ELSEWHERE = [
    member("Ann", thread="t2"),
    member("Ann", channel="c2"),
    member("Ann", workspace="w2"),
    member("Mod", workspace="w2", moderator=True),
]


@pytest.mark.parametrize("outsider", ELSEWHERE, ids=["thread", "channel", "workspace", "mod"])
async def test_nothing_reaches_across_threads(deps: Deps, database: FakeDatabase,
                                              outsider) -> None:  # fmt: skip
    await _story(deps, "[Mira] secret")
    job = await service.render(deps, ANN)
    before = database.state
    for call in (
        service.list_beats(deps, outsider),
        service.add_beat(deps, outsider, "intrusion"),
        service.edit_beat(deps, outsider, 1, "x"),
        service.remove_beat(deps, outsider, 1),
        service.undo_beat(deps, outsider),
        service.cancel(deps, outsider, job.id),
        service.export(deps, outsider),
        service.status(deps, outsider),
        service.lock_look(deps, outsider, "Mira"),
        service.delete_story(deps, outsider),
    ):
        with pytest.raises(NotFound):
            await call
    assert database.state == before
    # Its own story in that thread sees none of the first one.
    await service.new_story(deps, outsider, "Other")
    await service.cast_character(deps, outsider, "Mira", "a different Mira")
    with pytest.raises(NotFound):
        await service.cancel(deps, outsider, job.id)
    assert (await service.list_beats(deps, outsider)).total == 0
    assert (await service.export(deps, ANN)).characters[0].description.startswith("a girl")
