"""A running job's progress on its row: written by the worker, read by the chat side."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storyloom.storage.tables import RenderJobRow
from storyloom.story.model import JobStatus


async def write_progress(
    session: AsyncSession, job_id: int, percent: int, text: str, preview: bytes | None = None
) -> None:
    """Record progress, only while the job runs (a late report must not touch a cancel);
    a preview image replaces the last one (a report without one keeps it)."""
    values: dict[str, object] = {"progress_percent": percent, "progress_text": text[:200]}
    if preview is not None:
        values["progress_preview"] = preview
    await session.execute(
        update(RenderJobRow)
        .where(RenderJobRow.id == job_id, RenderJobRow.status == JobStatus.RUNNING.value)
        .values(**values)
    )


async def read_progress(session: AsyncSession, job_id: int) -> tuple[int, str] | None:
    """(percent, report) of the job's last recorded progress, or None if there is none."""
    query = select(RenderJobRow.progress_percent, RenderJobRow.progress_text).where(
        RenderJobRow.id == job_id
    )
    row = (await session.execute(query)).one_or_none()
    if row is None or row[0] is None or row[1] is None:
        return None
    return int(row[0]), str(row[1])
