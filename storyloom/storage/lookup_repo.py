"""SQL implementation of the core's `ChannelStories` lookup (storyloom.story.lookup)."""

from __future__ import annotations

from sqlalchemy import Select, select

from storyloom.storage.engine import SqlDatabase
from storyloom.storage.tables import StoryRow
from storyloom.story.model import StoryStatus, ThreadKey


class SqlChannelStories:
    """Channel-scoped story queries; every query is bounded by workspace and channel."""

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db

    async def latest_open(self, workspace_id: str, channel_id: str) -> ThreadKey | None:
        """The thread of the channel's newest open story, if any."""
        query = (
            select(StoryRow)
            .where(
                StoryRow.workspace_id == workspace_id,
                StoryRow.channel_id == channel_id,
                StoryRow.status == StoryStatus.OPEN.value,
            )
            .order_by(StoryRow.created_at.desc(), StoryRow.id.desc())
            .limit(1)
        )
        return await self._thread(query)

    async def by_id(self, workspace_id: str, channel_id: str, story_id: int) -> ThreadKey | None:
        """The thread of story `story_id`, only if it lives in this workspace and channel."""
        query = select(StoryRow).where(
            StoryRow.id == story_id,
            StoryRow.workspace_id == workspace_id,
            StoryRow.channel_id == channel_id,
        )
        return await self._thread(query)

    async def _thread(self, query: Select[StoryRow]) -> ThreadKey | None:
        async with self.db.reading() as uow:
            row = (await uow.session.execute(query)).scalar_one_or_none()
        return None if row is None else ThreadKey(row.workspace_id, row.channel_id, row.thread_id)
