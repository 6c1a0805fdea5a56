"""Fair turns across workspaces and caps on waiting jobs: the rules, then through the
service on a real SQLite database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storyloom.generation.safety import SafetyAction
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import JobAdmission, head_of_line, positions
from storyloom.jobs.artifacts import JobInput
from storyloom.jobs.fairness import JobLimits, QueuedJob, check_caps, fair_order
from storyloom.jobs.local import JobEvent, LocalWorker
from storyloom.storage import SqlDatabase
from storyloom.story import service
from storyloom.story.errors import LimitExceeded
from storyloom.story.model import Actor
from storyloom.story.service import Deps, utc_now
from tests.story.fakes import SentIds


def member(workspace: str, name: str) -> Actor:
    return Actor(workspace, "c", f"t-{name}", name, name.title())


def test_a_busy_workspace_takes_turns_with_a_quiet_one() -> None:
    busy = [QueuedJob(i, "busy", "ann") for i in (1, 2, 3, 4)]
    quiet = [QueuedJob(5, "quiet", "bob")]
    late = [QueuedJob(6, "late", "cy")]
    assert fair_order(busy + quiet + late) == [1, 5, 6, 2, 3, 4]


def test_a_workspace_just_served_waits_for_the_others_turn() -> None:
    served = QueuedJob(1, "busy", "ann", waiting=False)
    waiting = [
        QueuedJob(2, "busy", "ann"),
        QueuedJob(3, "busy", "ann"),
        QueuedJob(4, "quiet", "bob"),
    ]
    assert fair_order([served, *waiting]) == [4, 2, 3]


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=30))
def test_fair_order_keeps_every_waiting_job_once_each_workspace_in_request_order(
    jobs: list[tuple[str, bool]],
) -> None:
    line = [QueuedJob(i, w, "m", waiting) for i, (w, waiting) in enumerate(jobs, 1)]
    order = fair_order(line)
    assert sorted(order) == [job.id for job in line if job.waiting]
    for w in {"a", "b", "c"}:
        mine = [i for i in order if line[i - 1].workspace_id == w]
        assert mine == sorted(mine)
    # a job's turn: how many jobs its workspace asked for before it; the head's is lowest
    turn = {j.id: sum(k.workspace_id == j.workspace_id for k in line[: j.id - 1]) for j in line}
    assert [turn[i] for i in order] == sorted(turn[i] for i in order)


def test_caps_count_only_the_actors_own_workspace() -> None:
    limits = JobLimits(per_member=2, per_workspace=3)
    ann = member("w1", "ann")
    queued = [QueuedJob(1, "w1", "ann"), QueuedJob(2, "w1", "ann"), QueuedJob(3, "w2", "ann")]
    with pytest.raises(LimitExceeded, match="You already have 2 jobs waiting"):
        check_caps(queued, ann, limits)
    check_caps(queued, member("w2", "ann"), limits)  # the same id elsewhere is someone else
    queued.append(QueuedJob(4, "w1", "bob"))
    with pytest.raises(LimitExceeded, match="This server already has 3 jobs waiting"):
        check_caps(queued, member("w1", "cy"), limits)


class HeldQueue:
    """A queue whose jobs never start, so they stay waiting."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    async def submit(self, job_id: int) -> None:
        self.sent.append(job_id)


async def story(deps: Deps, actor: Actor) -> None:
    await service.new_story(deps, actor, "Tale")
    await service.add_beat(deps, actor, "A quiet harbour at dawn")


async def test_the_service_refuses_a_job_over_the_member_cap_until_one_is_cancelled(
    db: SqlDatabase,
) -> None:
    queue = HeldQueue()
    deps = Deps(db, queue, STYLE_NAMES, "comic", admit_job=JobAdmission(JobLimits(2, 5)))
    ann = member("w1", "ann")
    await story(deps, ann)
    first = await service.render(deps, ann)
    await service.render(deps, ann)
    with pytest.raises(LimitExceeded):
        await service.render(deps, ann)
    assert len(queue.sent) == 2  # the refused job was neither recorded nor sent
    await service.cancel(deps, ann, first.id)
    await service.render(deps, ann)
    assert len(queue.sent) == 3


async def test_the_workspace_cap_leaves_other_workspaces_free(db: SqlDatabase) -> None:
    deps = Deps(db, HeldQueue(), STYLE_NAMES, "comic", admit_job=JobAdmission(JobLimits(5, 2)))
    ann, bob, cy = member("w1", "ann"), member("w1", "bob"), member("w2", "cy")
    for actor in (ann, bob, cy):
        await story(deps, actor)
    await service.render(deps, ann)
    await service.render(deps, bob)
    with pytest.raises(LimitExceeded, match="This server"):
        await service.clip(deps, ann)
    await service.render(deps, cy)


async def test_positions_interleave_workspaces_on_the_database(db: SqlDatabase) -> None:
    deps = Deps(db, HeldQueue(), STYLE_NAMES, "comic")
    ann, bob = member("busy", "ann"), member("quiet", "bob")
    await story(deps, ann)
    await story(deps, bob)
    a1, a2, a3 = [await service.render(deps, ann) for _ in range(3)]
    b1 = await service.render(deps, bob)
    assert await positions(db, utc_now()) == {a1.id: 1, b1.id: 2, a2.id: 3, a3.id: 4}
    await service.cancel(deps, ann, a1.id)  # cancelled before it started: it leaves the line
    assert await positions(db, utc_now()) == {a2.id: 1, b1.id: 2, a3.id: 3}


class RecordingWorker(LocalWorker):
    """The real worker with rendering replaced by a note of which job ran."""

    ran: list[int]

    def _render(
        self, work: JobInput, should_cancel: Callable[[], bool], on_progress: object
    ) -> tuple[list[Path], list[SafetyAction]]:
        self.ran.append(work.job.id)
        return [], []


async def test_the_worker_serves_workspaces_in_turns_whatever_message_woke_it(
    db: SqlDatabase, tmp_path: Path
) -> None:
    async def ignore(event: JobEvent) -> None:
        pass

    worker = RecordingWorker(db, lambda: None, tmp_path, ignore, pick_next=head_of_line)  # type: ignore[arg-type, return-value]
    worker.ran = []
    sent = SentIds()
    deps = Deps(db, sent, STYLE_NAMES, "comic")
    ann, bob, cy = member("busy", "ann"), member("quiet", "bob"), member("late", "cy")
    for actor in (ann, bob, cy):
        await story(deps, actor)
    a = [await service.render(deps, ann) for _ in range(4)]
    b = [await service.render(deps, bob) for _ in range(2)]
    c = await service.render(deps, cy)
    for job_id in sent.ids:  # each message wakes the worker, in the order they were sent
        await worker.process(job_id)
    assert worker.ran == [a[0].id, b[0].id, c.id, a[1].id, b[1].id, a[2].id, a[3].id]
