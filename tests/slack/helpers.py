"""Steps the Slack tests share: start a story, wait for the bot's answers."""

from __future__ import annotations

from typing import Any, Protocol

from storyloom.story.model import RenderJob, Story
from tests.job_rows import job_row

from .conftest import Slack
from .fake_slack import FakeSlack, Sender


class Chat(Protocol):
    """A channel to talk in: requests go out through `send`, the bot's calls land in `fake`."""

    fake: FakeSlack
    send: Sender


async def new_story(slack: Chat, title: str = "Harbour", **kw: Any) -> str:
    """`/story new TITLE`; return the anchor's ts (the story thread)."""
    before = len(slack.fake.named("chat.update"))
    answer = await command(slack, f"new {title}", **kw)
    assert "started" in answer, answer
    return str((await slack.fake.wait_for("chat.update", before + 1))[-1].params["ts"])


async def command(slack: Chat, text: str, **kw: Any) -> str:
    """`/story TEXT`; return the private answer the member gets."""
    before = len(slack.fake.named("chat.postEphemeral"))
    assert await slack.send.command(text, **kw) == 200
    return str((await slack.fake.wait_for("chat.postEphemeral", before + 1))[-1].params["text"])


async def said(slack: Chat, text: str, thread_ts: str | None, replies: int = 1, **kw: Any) -> str:
    """`@storyloom TEXT` in the thread; return the last of the bot's `replies` messages
    there (a job's status message comes before the answer: 2)."""
    before = len(slack.fake.named("chat.postMessage"))
    assert await slack.send.mention(text, thread_ts, **kw) == 200
    return str((await slack.fake.wait_for("chat.postMessage", before + replies))[-1].params["text"])


def outcome_actions(slack: Chat, action: str) -> list[dict[str, Any]]:
    """The buttons (or menu) of the bot's last edit whose first action is `action`: what a
    finished job's status message offers next (redraw a panel, lock a look)."""
    edited = slack.fake.named("chat.update")[-1].params["blocks"]
    for block in edited:
        elements = block.get("elements") or []
        if block["type"] == "actions" and elements[0]["action_id"].startswith(action):
            return list(elements)
    raise AssertionError(f"no {action} in the last edit: {edited}")


async def pressed(slack: Chat, action: str, value: str, **kw: Any) -> str:
    """Press a button; return the private answer."""
    before = len(slack.fake.named("chat.postEphemeral"))
    assert await slack.send.button(action, value, **kw) == 200
    return str((await slack.fake.wait_for("chat.postEphemeral", before + 1))[-1].params["text"])


async def story_of(slack: Slack, team: str = "T1", channel: str = "C1") -> Story:
    """The channel's latest open story."""
    key = await slack.stories.latest_open(team, channel)
    assert key is not None
    async with slack.db.reading() as uow:
        story = await uow.stories.get(key)
    assert story is not None
    return story


async def job(slack: Slack, job_id: int) -> RenderJob:
    """A job's row as it is now."""
    return await job_row(slack.db, job_id)
