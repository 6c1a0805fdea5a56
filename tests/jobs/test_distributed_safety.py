"""The safety checks in the distributed mode: a `storyloom worker` child process (tiny model,
real NudeNet detector) checks every panel at the level the server's moderators chose, and
the word list refuses the same text as in the embedded mode. Redis and SQLite for real."""

from __future__ import annotations

import dataclasses

import pytest

from storyloom.story import server_admin, service
from storyloom.story.audit import AuditAction
from storyloom.story.model import JobStatus
from storyloom.story.moderation import Refused
from tests.jobs.test_distributed import ANN, Cluster, cluster, models, redis  # noqa: F401

MOD = dataclasses.replace(ANN, member_id="mod", display_name="Mo", is_moderator=True)


async def test_the_worker_checks_panels_at_the_servers_level(cluster: Cluster) -> None:  # noqa: F811
    worker = cluster.start_worker("w1")
    worker.wait_ready()
    async with cluster.bot() as seen:
        assert cluster.deps is not None
        await server_admin.change_setting(cluster.deps, MOD, "safety", "blur")
        with pytest.raises(Refused):
            await service.add_beat(cluster.deps, ANN, "the p0rn0 stash")
        job = await cluster.render()
        assert job.safety == "blur"
        done = await cluster.reported(seen, job.id)
        entries = await server_admin.audit_log(cluster.deps, MOD, 50)
    assert done.status == JobStatus.DONE
    # the worker's real detector looked at both panels and flagged neither (tiny renders)
    assert f"job {job.id}: image check (blur) looked at 2 images, flagged 0" in worker.text()
    actions = [e.action for e in entries]
    assert AuditAction.TEXT_REFUSED in actions and AuditAction.JOB_REQUESTED in actions
    assert AuditAction.PANEL_BLURRED not in actions
