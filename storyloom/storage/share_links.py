"""Share links in SQL: the core's `ShareLinkRepository` over a unit of work's session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storyloom.storage.tables import ShareLinkRow, StoryRow
from storyloom.storage.unit_of_work import session_of
from storyloom.story.model import Story
from storyloom.story.ports import UnitOfWork
from storyloom.story.sharing import ShareLink


def _link(row: ShareLinkRow, title: str) -> ShareLink:
    return ShareLink(
        row.id, row.story_id, title, row.workspace_id, row.created_by, row.created_by_name,
        row.created_at, row.revoked_at,
    )  # fmt: skip


def _with_titles() -> Select[ShareLinkRow, str]:
    return select(ShareLinkRow, StoryRow.title).join(StoryRow, StoryRow.id == ShareLinkRow.story_id)


class SqlShareLinks:
    """Implements `ShareLinkRepository`."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, story: Story, token_hash: str, created_by: str, created_by_name: str, at: datetime
    ) -> ShareLink:
        """Store a new link of `story`."""
        row = ShareLinkRow(
            story_id=story.id, workspace_id=story.thread.workspace_id, token_hash=token_hash,
            created_by=created_by, created_by_name=created_by_name, created_at=at,
        )  # fmt: skip
        self._session.add(row)
        await self._session.flush()
        return _link(row, story.title)

    async def get(self, link_id: int) -> ShareLink | None:
        """A link by id, revoked or not."""
        query = _with_titles().where(ShareLinkRow.id == link_id)
        found = (await self._session.execute(query)).first()
        return None if found is None else _link(found[0], found[1])

    async def _active(self, *where: object) -> Sequence[ShareLink]:
        query = _with_titles().where(ShareLinkRow.revoked_at.is_(None), *where)  # type: ignore[arg-type]
        rows = await self._session.execute(query.order_by(ShareLinkRow.id))
        return [_link(row[0], row[1]) for row in rows]

    async def active_of_story(self, story_id: int) -> Sequence[ShareLink]:
        """The story's links not revoked, oldest first."""
        return await self._active(ShareLinkRow.story_id == story_id)

    async def active_of_workspace(self, workspace_id: str) -> Sequence[ShareLink]:
        """Every link of the server not revoked, oldest first."""
        return await self._active(ShareLinkRow.workspace_id == workspace_id)

    async def revoke(self, link_ids: Sequence[int], at: datetime) -> None:
        """Mark these links revoked."""
        await self._session.execute(
            update(ShareLinkRow).where(ShareLinkRow.id.in_(link_ids)).values(revoked_at=at)
        )

    async def story_of(self, token_hash: str) -> int | None:
        """The story id of the live link with this token hash."""
        query = select(ShareLinkRow.story_id).where(
            ShareLinkRow.token_hash == token_hash, ShareLinkRow.revoked_at.is_(None)
        )
        return (await self._session.execute(query)).scalar_one_or_none()


def share_links(uow: UnitOfWork) -> SqlShareLinks:
    """The share links of a SQL unit of work (the core's `LinksOf`)."""
    return SqlShareLinks(session_of(uow))
