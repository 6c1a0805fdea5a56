"""Where a job's status message lives, kept on its row so a restarted bot can still edit it.

The reference is the adapter's own string (a Discord channel and message id, a Slack channel
and timestamp); the jobs layer only stores and returns it (`RenderJob.status_ref`).

One status message per job, whatever the number of concurrent presses or requests: the
adapter `claim`s the job's message (a compare-and-set on the row) before it posts one, and
only the request that won posts it.
"""

from __future__ import annotations

from storyloom.storage.owed import reopen
from storyloom.storage.unit_of_work import session_of
from storyloom.story.ports import Database
from storyloom.story.service import utc_now

MAX_REF_CHARS = 200
CLAIMED = "claimed"  # a status message is being posted; no adapter parses it as a reference
# the outbox steps that give a status message its last word: "status" (the outcome's line)
# or "outcome" (the line with the result in it, or its buttons)
STATUS_STEPS = ("status", "outcome")


async def claim(db: Database, job_id: int) -> bool:
    """Take the right to post the job's status message; False if another request has it."""
    async with db.writing() as uow:
        return await uow.jobs.claim_status_ref(job_id, CLAIMED)


async def remember(db: Database, job_id: int, ref: str) -> None:
    """Record the job's status message reference. If the job's outcome was delivered
    before the message existed, its final edit is owed again: the message ends in it."""
    if len(ref) > MAX_REF_CHARS:
        raise ValueError(f"a status reference holds at most {MAX_REF_CHARS} characters")
    async with db.writing() as uow:
        await uow.jobs.set_status_ref(job_id, ref)
        for step in STATUS_STEPS:
            await reopen(session_of(uow), job_id, step, utc_now())
