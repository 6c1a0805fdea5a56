"""Moderators: Slack bodies carry no roles, so the bot asks users.info (admins and owners
moderate), and remembers the answer for a short time."""

from __future__ import annotations

from .conftest import Slack
from .helpers import command, new_story, pressed, said, story_of


def _beat_texts(slack: Slack) -> list[str]:
    return [str(c.params["text"]) for c in slack.fake.named("chat.postEphemeral")]


async def test_a_member_cannot_change_others_beats_but_an_admin_can(slack: Slack) -> None:
    slack.fake.admins.add("UADMIN")
    ts = await new_story(slack, user="UOWNER")
    assert "beat 1" in await command(slack, "add the tide turns", user="UOWNER")
    # another member may add, but not edit or remove the owner's beat, nor delete the story
    assert "beat 2" in await said(slack, "add gulls circle", ts, user="UGUEST")
    refused = await command(slack, "edit 1 the tide never turns", user="UGUEST")
    assert refused.startswith("✗")
    assert "✗" in await command(slack, "remove 1", user="UGUEST")
    assert "✗" in await command(slack, "delete", user="UGUEST")
    listing = await command(slack, "list", user="UGUEST")
    assert "the tide turns" in listing and "never" not in listing
    # a workspace admin moderates: edits and removes anyone's beat, deletes the story
    assert "beat 1 edited" in await command(slack, "edit 1 the tide stands still", user="UADMIN")
    assert "beat 2 removed" in await said(slack, "remove 2", ts, user="UADMIN")
    listing = await command(slack, "list", user="UADMIN")
    assert "stands still" in listing and "gulls" not in listing
    assert "deleted" in await command(slack, "delete", user="UADMIN")
    assert await slack.stories.latest_open("T1", "C1") is None
    # each member's role was asked of Slack once: the answer is remembered
    asked = [c.params["user"] for c in slack.fake.named("users.info")]
    assert sorted(asked) == ["UADMIN", "UGUEST", "UOWNER"]


async def test_an_admin_cancels_someone_elses_job_with_its_button(slack: Slack) -> None:
    slack.fake.admins.add("UADMIN")
    ts = await new_story(slack, user="UOWNER")
    await command(slack, "add a beat", user="UOWNER")
    await command(slack, "render", user="UOWNER")
    (job_id,) = slack.queue.submitted
    assert "✗" in await pressed(slack, "cancel", f"{ts}|{job_id}", user="UGUEST")
    assert f"job #{job_id} cancelled" in await pressed(
        slack, "cancel", f"{ts}|{job_id}", user="UADMIN"
    )


async def test_a_role_is_asked_again_once_the_remembered_answer_is_old(slack: Slack) -> None:
    now = [0.0]
    slack.adapter.members.clock = lambda: now[0]
    await new_story(slack, user="UOWNER")
    await command(slack, "add a beat", user="UOWNER")
    assert "✗" in await command(slack, "remove 1", user="UNEW")
    slack.fake.admins.add("UNEW")  # made an admin: within the minute the old answer holds
    now[0] = 30.0
    assert "✗" in await command(slack, "remove 1", user="UNEW")
    now[0] = 61.0
    assert "beat 1 removed" in await command(slack, "remove 1", user="UNEW")
    assert [c.params["user"] for c in slack.fake.named("users.info")].count("UNEW") == 2
    assert (await story_of(slack)).owner_id == "UOWNER"


async def test_beats_credit_the_members_display_name(slack: Slack) -> None:
    slack.fake.names.update({"U1": "Ada Lovelace", "U2": "Grace"})
    ts = await new_story(slack)
    await command(slack, "add the engine hums")
    await said(slack, "add a moth flies in", ts, user="U2")
    listing = await command(slack, "list")
    assert "— Ada Lovelace" in listing and "— Grace" in listing
    anchor = slack.fake.named("chat.update")[0].params["text"]
    assert "a story by Ada Lovelace" in anchor
