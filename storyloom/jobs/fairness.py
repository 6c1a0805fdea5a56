"""Fair turns and caps for queued jobs.

The order interleaves workspaces so one busy server cannot starve the rest: a waiting job's
turn is the number of jobs its workspace asked for before it that are still waiting or were
served recently (started, within the caller's window). Lowest turn first, then request
order. A workspace that has just been served therefore waits for the others' next turn,
and within a workspace jobs keep the order they were asked for. Caps bound how many jobs
one member and one workspace may have waiting at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from storyloom.story.errors import LimitExceeded
from storyloom.story.model import Actor


@dataclass(frozen=True)
class JobLimits:
    """Caps on queued (not yet running) jobs; a running job no longer counts."""

    per_member: int = 3
    per_workspace: int = 10


@dataclass(frozen=True)
class QueuedJob:
    """A job as the line sees it: who asked, from which workspace, whether it still waits
    (queued) or was served (started recently; it only counts toward its workspace's turn)."""

    id: int
    workspace_id: str
    requested_by: str
    waiting: bool = True


def fair_order(jobs: Sequence[QueuedJob]) -> list[int]:
    """Waiting job ids in their turn order. `jobs` is in request order (ascending id)."""
    asked: Counter[str] = Counter()
    turns = []
    for job in jobs:
        if job.waiting:
            turns.append((asked[job.workspace_id], job.id))
        asked[job.workspace_id] += 1
    return [job_id for _, job_id in sorted(turns)]


def queue_positions(jobs: Sequence[QueuedJob]) -> dict[int, int]:
    """Each waiting job's place in line: 1 starts next."""
    return {job_id: place for place, job_id in enumerate(fair_order(jobs), 1)}


def check_caps(queued: Sequence[QueuedJob], actor: Actor, limits: JobLimits) -> None:
    """Raise `LimitExceeded` if the actor or the actor's workspace has too many jobs waiting."""
    here = [job for job in queued if job.waiting and job.workspace_id == actor.workspace_id]
    mine = sum(job.requested_by == actor.member_id for job in here)
    if mine >= limits.per_member:
        raise LimitExceeded(
            f"You already have {mine} jobs waiting (the limit is {limits.per_member}); "
            "wait for one to start or cancel one with /story cancel."
        )
    if len(here) >= limits.per_workspace:
        raise LimitExceeded(
            f"This server already has {len(here)} jobs waiting (the limit is "
            f"{limits.per_workspace}); try again when one has started."
        )
