"""/story settings and /story audit through the real bolt app: a workspace's admins keep
its settings and read its audit trail; members cannot; an admin of one workspace changes
nothing in another; refused text gets one private sentence and is stored nowhere."""

from __future__ import annotations

from typing import Any

from .conftest import Slack
from .fake_slack import Call
from .helpers import command, new_story, said


async def mentioned_privately(slack: Slack, text: str, ts: str, user: str) -> Call:
    """`@storyloom TEXT` in the thread; the private answer it gets."""
    before = len(slack.fake.named("chat.postEphemeral"))
    assert await slack.send.mention(text, ts, user=user) == 200
    return (await slack.fake.wait_for("chat.postEphemeral", before + 1))[-1]


async def _changes(slack: Slack, team: str) -> dict[str, Any]:
    async with slack.db.reading() as uow:
        return await uow.servers.changes(team)


async def test_admins_see_and_change_settings_and_members_cannot(slack: Slack) -> None:
    slack.fake.admins.add("UADMIN")
    refused = await command(slack, "settings", user="UGUEST")
    assert refused == "✗ Only this server's moderators can see its settings."
    assert (await command(slack, "settings safety off", user="UGUEST")).startswith("✗ Only")
    assert await _changes(slack, "T1") == {}

    shown = (await command(slack, "settings", user="UADMIN")).splitlines()
    assert "safety: block" in shown and "max-panels: 300" in shown
    assert await command(slack, "settings safety blur", user="UADMIN") == "safety set to blur"
    assert await command(slack, "settings add-word kraken", user="UADMIN") == (
        "add-word set to kraken"
    )
    bad = await command(slack, "settings styles comic, oilpaint", user="UADMIN")
    assert bad.startswith("✗ Pick styles from:")
    assert await _changes(slack, "T1") == {"safety": "blur", "words": ["kraken"]}

    await new_story(slack, user="UGUEST")
    no = await command(slack, "add the KR4K3N rises", user="UGUEST")
    assert no == "✗ That text can't be used here: it matches this server's word list."
    listing = await command(slack, "list", user="UGUEST")
    assert "0 beats" in listing


async def test_an_admin_of_another_workspace_changes_only_that_workspace(slack: Slack) -> None:
    slack.fake.admins.add("UADMIN")
    answer = await command(slack, "settings who-renders moderators", user="UADMIN", team="T2")
    assert answer == "who-renders set to moderators"
    assert await _changes(slack, "T2") == {"who_renders": "moderators"}
    assert await _changes(slack, "T1") == {}
    await new_story(slack, user="UGUEST")
    await command(slack, "add a beach", user="UGUEST")
    assert "queued" in await command(slack, "render", user="UGUEST")  # T1: everyone renders


async def test_admins_read_the_audit_trail_including_refusals(slack: Slack) -> None:
    slack.fake.admins.add("UADMIN")
    ts = await new_story(slack, "Harbour", user="UOWNER")
    await said(slack, "add gulls circle", ts, user="UGUEST")
    posted = len(slack.fake.named("chat.postMessage"))
    refused = await mentioned_privately(slack, "add f_u_c_k the gulls", ts, user="UGUEST")
    assert refused.params["text"].startswith("✗ That text can't be used here")
    assert refused.params["user"] == "UGUEST" and refused.params["thread_ts"] == ts
    assert len(slack.fake.named("chat.postMessage")) == posted  # nothing in the thread
    assert "✗" in await command(slack, "audit", user="UGUEST")
    # mrkdwn escaping puts zero-width spaces around `_`: read the text as members see it
    shown = (await command(slack, "audit 5", user="UADMIN")).replace("\u200b", "")
    trail = shown.splitlines()
    assert [line.split(" · ")[2].split(":")[0] for line in trail] == [
        "safety.text_refused",
        "beat.added",
        "story.created",
    ]
    assert "f_u_c_k" not in "\n".join(trail)
    assert (await command(slack, "audit x", user="UADMIN")).startswith("✗ Give how many")
