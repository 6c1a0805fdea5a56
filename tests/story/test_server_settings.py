"""Server settings, text moderation and the audit trail in the core, on the in-memory fakes."""

from __future__ import annotations

import dataclasses

import pytest

from storyloom.story import server_admin, service
from storyloom.story.audit import AuditAction
from storyloom.story.errors import Forbidden, InvalidInput, LimitExceeded
from storyloom.story.moderation import REFUSED, Refused
from storyloom.story.service import Deps

from .conftest import member
from .fakes import FakeDatabase, FakeQueue

ANN = member("Ann")
MOD = member("Mo", moderator=True)
OTHER_MOD = member("Olga", moderator=True, workspace="w2")


async def _story(deps: Deps) -> None:
    await service.new_story(deps, ANN, "Lighthouse")
    await service.add_beat(deps, ANN, "a lighthouse at night")


async def test_a_refused_beat_is_not_stored_and_its_text_not_kept(
    deps: Deps, database: FakeDatabase
) -> None:
    await _story(deps)
    with pytest.raises(Refused) as refused:
        await service.add_beat(deps, ANN, "she is n.a.k.e.d on the beach")
    assert refused.value.message == REFUSED
    assert [b.text for b in database.state.beats.values()] == ["a lighthouse at night"]
    [entry] = [e for e in database.state.audit if e.action is AuditAction.TEXT_REFUSED]
    assert (entry.actor_id, entry.target, entry.detail) == ("id-Ann", "beat", None)


@pytest.mark.parametrize(
    ("use", "args"),
    [
        (service.new_story, ("P0RN night",)),
        (service.cast_character, ("Mira", "a nud3 girl")),
        (service.cast_character, ("Fuuuck", "a sailor")),
        (service.edit_beat, (1, "f u c k the storm")),
    ],
)
async def test_titles_names_descriptions_and_edits_are_checked(
    deps: Deps, database: FakeDatabase, use: object, args: tuple[object, ...]
) -> None:
    actor = ANN
    if use is not service.new_story:
        await _story(deps)
    else:
        actor = member("Ann", thread="t2")
    before = database.state
    with pytest.raises(Refused):
        await use(deps, actor, *args)  # type: ignore[operator]
    assert database.state.stories == before.stories and database.state.beats == before.beats


async def test_a_servers_own_terms_refuse_only_on_that_server(deps: Deps) -> None:
    await _story(deps)
    await server_admin.change_setting(deps, MOD, "add-word", "banana")
    with pytest.raises(Refused):
        await service.add_beat(deps, ANN, "a B4N4N4 on the beach")
    elsewhere = member("Ann", workspace="w2")
    await service.new_story(deps, elsewhere, "Other")
    await service.add_beat(deps, elsewhere, "a banana on the beach")
    await server_admin.change_setting(deps, MOD, "remove-word", "banana")
    await service.add_beat(deps, ANN, "a banana on the beach")


async def test_members_cannot_see_or_change_settings_or_read_the_audit(deps: Deps) -> None:
    with pytest.raises(Forbidden):
        await server_admin.view_settings(deps, ANN)
    with pytest.raises(Forbidden):
        await server_admin.change_setting(deps, ANN, "safety", "off")
    with pytest.raises(Forbidden):
        await server_admin.audit_log(deps, ANN)


async def test_a_moderator_of_one_server_does_not_touch_another(
    deps: Deps, database: FakeDatabase
) -> None:
    await server_admin.change_setting(deps, OTHER_MOD, "who-renders", "moderators")
    assert set(database.state.servers) == {"w2"}
    assert (await server_admin.view_settings(deps, MOD)).who_renders == "everyone"
    await _story(deps)
    assert all(e.workspace_id == "w1" for e in await server_admin.audit_log(deps, MOD))
    assert all(e.workspace_id == "w2" for e in await server_admin.audit_log(deps, OTHER_MOD))
    # as a plain member of w1, Olga changes nothing there
    guest = dataclasses.replace(OTHER_MOD, workspace_id="w1", is_moderator=False)
    with pytest.raises(Forbidden):
        await server_admin.change_setting(deps, guest, "safety", "blur")


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("safety", "sometimes", InvalidInput),
        ("max-panels", "0", InvalidInput),
        ("max-panels", "301", InvalidInput),
        ("max-waiting-member", "three", InvalidInput),
        ("styles", "comic, oilpaint", InvalidInput),
        ("default-style", "oilpaint", InvalidInput),
        ("who-renders", "admins", InvalidInput),
        ("colour", "red", InvalidInput),
        ("add-word", "x" * 65, LimitExceeded),
        ("add-word", "!!!", InvalidInput),
        ("remove-word", "never-added", InvalidInput),
    ],
)
async def test_bad_settings_are_refused_and_change_nothing(
    deps: Deps, database: FakeDatabase, key: str, value: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await server_admin.change_setting(deps, MOD, key, value)
    assert database.state.servers == {} and database.state.audit == []


async def test_settings_default_to_the_process_and_reset_to_it(deps: Deps) -> None:
    shown = await server_admin.view_settings(deps, MOD)
    assert shown == deps.server_defaults
    changed = await server_admin.change_setting(deps, MOD, "max-panels", "2")
    assert changed.max_panels_per_job == 2
    back = await server_admin.change_setting(deps, MOD, "max-panels", "default")
    assert back.max_panels_per_job == deps.server_defaults.max_panels_per_job


async def test_who_renders_styles_and_panel_caps_apply(deps: Deps) -> None:
    await _story(deps)
    await service.add_beat(deps, ANN, "waves")
    await service.add_beat(deps, ANN, "dawn")
    await server_admin.change_setting(deps, MOD, "max-panels", "2")
    with pytest.raises(LimitExceeded, match="at most 2 panels"):
        await service.render(deps, ANN)
    await service.render(deps, ANN, 1, 2)
    await server_admin.change_setting(deps, MOD, "who-renders", "role:77")
    with pytest.raises(Forbidden):
        await service.render(deps, ANN, 2, 3)
    await service.render(deps, dataclasses.replace(ANN, roles=frozenset({"77"})), 2, 3)
    await server_admin.change_setting(deps, MOD, "who-renders", "moderators")
    with pytest.raises(Forbidden, match="only moderators"):
        await service.reroll_panel(deps, ANN, 1)
    await service.render(deps, MOD, 1, 1)
    await server_admin.change_setting(deps, MOD, "styles", "manga, watercolor")
    with pytest.raises(InvalidInput, match="manga, watercolor"):
        await service.set_style(deps, MOD, "comic")
    await server_admin.change_setting(deps, MOD, "default-style", "manga")
    story = await service.new_story(deps, member("Bo", thread="t9"), "Second")
    assert story.style == "manga"


async def test_the_audit_trail_records_who_did_what(deps: Deps) -> None:
    await _story(deps)
    await service.edit_beat(deps, ANN, 1, "a lighthouse at dawn")
    job = await service.render(deps, ANN)
    await service.cancel(deps, MOD, job.id)
    await service.remove_beat(deps, MOD, 1)  # moderators remove any beat
    await server_admin.change_setting(deps, MOD, "safety", "blur")
    entries = list(reversed(await server_admin.audit_log(deps, MOD)))
    assert [(e.action, e.actor_id) for e in entries] == [
        (AuditAction.STORY_CREATED, "id-Ann"),
        (AuditAction.BEAT_ADDED, "id-Ann"),
        (AuditAction.BEAT_EDITED, "id-Ann"),
        (AuditAction.JOB_REQUESTED, "id-Ann"),
        (AuditAction.JOB_CANCELLED, "id-Mo"),
        (AuditAction.BEAT_REMOVED, "id-Mo"),
        (AuditAction.SETTINGS_CHANGED, "id-Mo"),
    ]
    assert entries[3].job_id == job.id and entries[5].target == "beat 1"
    assert entries[0].at < entries[-1].at


async def test_deleting_a_story_clears_its_entries_text_but_keeps_their_ids(
    deps: Deps, database: FakeDatabase
) -> None:
    await _story(deps)
    story_id = next(iter(database.state.stories))
    await service.delete_story(deps, MOD)
    entries = await server_admin.audit_log(deps, MOD)
    about = [e for e in entries if e.story_id == story_id]
    assert {e.action for e in about} >= {AuditAction.BEAT_ADDED, AuditAction.STORY_DELETED}
    assert all(e.detail is None for e in about)
    assert all(e.actor_name is None for e in about if e.action is not AuditAction.STORY_DELETED)
    assert {e.actor_id for e in about} == {"id-Ann", "id-Mo"}
    assert not any("lighthouse" in e.describe() for e in entries)


async def test_per_server_caps_reach_the_admission_hook(database: FakeDatabase) -> None:
    # the core hands the unit of work to the hook; the SQL admission reads the server's
    # caps from it (tests/jobs covers the SQL side); here: the stored change is visible
    seen: list[dict[str, object]] = []

    async def admit(uow, actor) -> None:  # type: ignore[no-untyped-def]
        seen.append(await uow.servers.changes(actor.workspace_id))

    deps = Deps(database, FakeQueue(database), frozenset({"comic"}), "comic", admit_job=admit)
    await _story(deps)
    await server_admin.change_setting(deps, MOD, "max-waiting-member", "1")
    await service.render(deps, ANN)
    assert seen == [{"max_waiting_per_member": 1}]
