"""Finding a channel's story when the command cannot be typed in its thread (Slack).

Slack runs slash commands only in channels, so `/story add` names no thread: it acts on
the channel's latest open story, or on the one a member names with `#ID`.
"""

from __future__ import annotations

from typing import Protocol

from storyloom.story.errors import NotFound
from storyloom.story.model import ThreadKey

NO_CHANNEL_STORY = "There is no open story in this channel yet. Start one with /story new TITLE."


class ChannelStories(Protocol):
    """Read-only queries over the stories of one channel."""

    async def latest_open(self, workspace_id: str, channel_id: str) -> ThreadKey | None:
        """The thread of the channel's newest open story, if any."""
        ...

    async def by_id(self, workspace_id: str, channel_id: str, story_id: int) -> ThreadKey | None:
        """The thread of story `story_id`, only if it lives in this channel."""
        ...


async def channel_story(
    stories: ChannelStories, workspace_id: str, channel_id: str, story_id: int | None
) -> ThreadKey:
    """The thread a channel-level command acts on; NotFound with a hint if there is none."""
    if story_id is None:
        found = await stories.latest_open(workspace_id, channel_id)
        if found is None:
            raise NotFound(NO_CHANNEL_STORY)
        return found
    found = await stories.by_id(workspace_id, channel_id, story_id)
    if found is None:
        raise NotFound(f"There is no story #{story_id} in this channel.")
    return found
