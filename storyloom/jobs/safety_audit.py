"""The image check's actions go to the server's audit trail, with the job's outcome."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from storyloom.generation.safety import SafetyAction
from storyloom.story.audit import AuditAction, NewAuditEntry
from storyloom.story.model import RenderJob, Story
from storyloom.story.ports import UnitOfWork

ACTIONS = {
    "blocked": AuditAction.PANEL_BLOCKED,
    "blurred": AuditAction.PANEL_BLURRED,
    "allowed": AuditAction.PANEL_ALLOWED,
}


async def record_safety(
    uow: UnitOfWork, story: Story, job: RenderJob, flagged: Sequence[SafetyAction], at: datetime
) -> None:
    """One entry per flagged image, credited to who asked for the job."""
    for action in flagged:
        await uow.audit.add(
            NewAuditEntry(
                story.thread.workspace_id, at, ACTIONS[action.action], job.requested_by,
                job.requested_by_name, story_id=story.id, job_id=job.id,
                target=action.what, detail=action.describe(),
            )
        )  # fmt: skip
