"""Server settings and the audit trail: SQL in, the core's values out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storyloom.storage.tables import AuditEntryRow, ServerSettingsRow
from storyloom.story.audit import AuditAction, AuditEntry, NewAuditEntry
from storyloom.story.ports import NewBeat


class SqlServers:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def changes(self, workspace_id: str) -> dict[str, Any]:
        """The server's changed settings (empty: all defaults)."""
        row = await self._session.get(ServerSettingsRow, workspace_id)
        return {} if row is None else dict(json.loads(row.changes))

    async def put(self, workspace_id: str, changes: dict[str, Any], by: str, at: datetime) -> None:
        """Replace the server's changed settings."""
        row = await self._session.get(ServerSettingsRow, workspace_id)
        text = json.dumps(changes, sort_keys=True)
        if row is None:
            self._session.add(ServerSettingsRow(
                workspace_id=workspace_id, changes=text, updated_by=by, updated_at=at
            ))  # fmt: skip
        else:
            row.changes, row.updated_by, row.updated_at = text, by, at
        await self._session.flush()


def _entry(row: AuditEntryRow) -> AuditEntry:
    return AuditEntry(
        workspace_id=row.workspace_id, at=row.at, action=AuditAction(row.action),
        actor_id=row.actor_id, actor_name=row.actor_name, story_id=row.story_id,
        job_id=row.job_id, target=row.target, detail=row.detail, id=row.id,
    )  # fmt: skip


def beat_added(beat: NewBeat, story_id: int, position: int) -> NewAuditEntry:
    """The audit entry of an appended beat, written in the transaction that appends it."""
    return NewAuditEntry(
        beat.thread.workspace_id, beat.created_at, AuditAction.BEAT_ADDED, beat.author_id,
        beat.author_name, story_id=story_id, target=f"beat {position}", detail=beat.text,
    )  # fmt: skip


def audit_values(entry: NewAuditEntry) -> dict[str, object]:
    """An entry as the columns of its row."""
    return dict(
        workspace_id=entry.workspace_id, at=entry.at, action=entry.action.value,
        actor_id=entry.actor_id, actor_name=entry.actor_name, story_id=entry.story_id,
        job_id=entry.job_id, target=entry.target, detail=entry.detail,
    )  # fmt: skip


class SqlAudit:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, entry: NewAuditEntry) -> None:
        """Record an entry."""
        self._session.add(AuditEntryRow(**audit_values(entry)))
        await self._session.flush()

    async def recent(self, workspace_id: str, limit: int) -> Sequence[AuditEntry]:
        """The server's newest entries first."""
        query = (
            select(AuditEntryRow)
            .where(AuditEntryRow.workspace_id == workspace_id)
            .order_by(AuditEntryRow.id.desc())
            .limit(limit)
        )
        return [_entry(row) for row in (await self._session.execute(query)).scalars()]

    async def forget_text(self, story_id: int) -> None:
        """Clear a story's entries' text and names; ids stay."""
        await self._session.execute(
            update(AuditEntryRow)
            .where(AuditEntryRow.story_id == story_id)
            .values(detail=None, actor_name=None)
        )
