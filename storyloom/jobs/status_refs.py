"""Where a job's status message lives, kept on its row so a restarted bot can still edit it.

The reference is the adapter's own string (a Discord channel and message id, a Slack channel
and timestamp); the jobs layer only stores and returns it (`RenderJob.status_ref`).

One status message per job, whatever the number of concurrent presses or requests: the
adapter `claim`s the job's message (a compare-and-set on the row) before it posts one, and
only the request that won posts it.

A claim is a lease, not a promise: it says when it was taken. A process that dies between
its claim and its post leaves a claim that never turns into a reference; once it is older
than `CLAIM_LEASE_S`, the courier takes it over (`take_over`, another compare-and-set) and
posts the message itself, so the job still has one and it still ends in the outcome.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from storyloom.jobs.courier import Retry
from storyloom.storage.owed import reopen
from storyloom.storage.unit_of_work import session_of
from storyloom.story.ports import Database
from storyloom.story.service import utc_now

MAX_REF_CHARS = 200
# "claimed:<unix seconds>": a status message is being posted (no adapter parses it as a
# reference); a bare "claimed" (written before claims had a time) counts as long expired
CLAIMED = "claimed"
_CLAIM = re.compile(r"claimed(?::(?P<at>\d+(?:\.\d+)?))?")
# Claim to post takes a second or two (a platform's rate limit may add some): a claim this
# old belongs to a request that died
CLAIM_LEASE_S = 30.0
# a lane waiting on a fresh claim looks again this often: its request usually posts within
# a second or two (a 429 on that post adds its retry_after), not at the end of the lease
RECHECK_S = 1.0
# the outbox steps that give a status message its last word: "status" (the outcome's line)
# or "outcome" (the line with the result in it, or its buttons)
STATUS_STEPS = ("status", "outcome")


def claim_text(now: datetime) -> str:
    """The claim written at `now`."""
    return f"{CLAIMED}:{now.timestamp():.3f}"


def claimed_at(ref: str | None) -> datetime | None:
    """When a claim was taken, if `ref` is one (not a reference, not empty)."""
    found = _CLAIM.fullmatch(ref or "")
    if found is None:
        return None
    return datetime.fromtimestamp(float(found["at"] or 0), UTC)


async def claim(db: Database, job_id: int) -> bool:
    """Take the right to post the job's status message; False if another request has it."""
    async with db.writing() as uow:
        return await uow.jobs.claim_status_ref(job_id, claim_text(utc_now()))


async def take_over(db: Database, job_id: int, lease_s: float | None = None) -> float | None:
    """Take over a claim its request never turned into a status message.

    None: nothing to take over (the job has a message, or no claim; or another courier
    took it first); 0: taken, post the message now and `posted` it; more than 0: the claim
    is younger than the lease (its request may still post), ask again in that many seconds.
    """
    lease = CLAIM_LEASE_S if lease_s is None else lease_s
    now = utc_now()
    async with db.writing() as uow:
        job = await uow.jobs.find(job_id)
        seen = None if job is None else job.status_ref
        at = claimed_at(seen)
        if at is None:
            return None
        age = (now - at).total_seconds()
        if age < lease:
            return max(0.1, lease - age)
        taken = await uow.jobs.claim_status_ref(job_id, claim_text(now), seen=seen)
    return 0.0 if taken else None


async def take_over_to_post(db: Database, job_id: int, *, wait: bool) -> bool:
    """Whether a courier should post the status message of a job whose claim's request
    died (`take_over` won); a claim still within its lease is waited for (`Retry`, looked
    at again within `RECHECK_S`) if `wait`, else left alone (False)."""
    after_s = await take_over(db, job_id)
    if after_s is None:
        return False
    if after_s > 0:
        if wait:
            raise Retry(min(after_s, RECHECK_S), "its status message is still being posted")
        return False
    return True


async def posted(db: Database, job_id: int, ref: str) -> None:
    """Record the message a courier posted for a claim it took over (it already shows the
    job's state: nothing is owed again)."""
    _check(ref)
    async with db.writing() as uow:
        await uow.jobs.set_status_ref(job_id, ref)


async def remember(db: Database, job_id: int, ref: str) -> None:
    """Record the job's status message reference. If the job's outcome was delivered
    before the message existed, its final edit is owed again: the message ends in it."""
    _check(ref)
    async with db.writing() as uow:
        await uow.jobs.set_status_ref(job_id, ref)
        for step in STATUS_STEPS:
            await reopen(session_of(uow), job_id, step, utc_now())


def _check(ref: str) -> None:
    if len(ref) > MAX_REF_CHARS:
        raise ValueError(f"a status reference holds at most {MAX_REF_CHARS} characters")
