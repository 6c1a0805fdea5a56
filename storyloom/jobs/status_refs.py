"""Where a job's status message lives, kept on its row so a restarted bot can still edit it.

The reference is the adapter's own string (a Discord channel and message id, a Slack channel
and timestamp); the jobs layer only stores and returns it (`RenderJob.status_ref`).
"""

from __future__ import annotations

from storyloom.story.ports import Database

MAX_REF_CHARS = 200


async def remember(db: Database, job_id: int, ref: str) -> None:
    """Record the job's status message reference."""
    if len(ref) > MAX_REF_CHARS:
        raise ValueError(f"a status reference holds at most {MAX_REF_CHARS} characters")
    async with db.writing() as uow:
        await uow.jobs.set_status_ref(job_id, ref)
