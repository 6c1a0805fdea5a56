"""One builder wires the story service for every chat front end, from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from storyloom.bot.wiring import story_deps
from storyloom.config import Settings
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import JobAdmission


@dataclass
class FakeJobs:
    """The two things the builder takes from a job runtime."""

    queue: object = field(default_factory=object)
    forgetter: object = field(default_factory=object)

    def forget_files(self) -> Any:
        return self.forgetter


def test_the_operators_settings_reach_every_use_case() -> None:
    settings = Settings(
        style="noir",
        max_waiting_per_member=2,
        max_waiting_per_workspace=9,
        max_panels_per_job=5,
        max_steps=12,
    )
    jobs, db = FakeJobs(), object()

    deps = story_deps(settings, cast(Any, db), cast(Any, jobs))

    assert deps.db is db and deps.queue is jobs.queue and deps.forget_files is jobs.forgetter
    assert deps.styles == STYLE_NAMES and deps.default_style == "noir"
    assert isinstance(deps.admit_job, JobAdmission)
    assert (deps.admit_job.limits.per_member, deps.admit_job.limits.per_workspace) == (2, 9)
    assert (deps.render_limits.max_panels, deps.render_limits.max_steps) == (5, 12)
    defaults = deps.server_defaults
    assert (defaults.default_style, defaults.max_waiting_per_member) == ("noir", 2)
    assert defaults.max_panels_per_job == 5


def test_a_front_end_may_forget_more_files_than_the_job_runtime() -> None:
    async def also_the_library(story: Any) -> None:
        return None

    deps = story_deps(
        Settings(), cast(Any, object()), cast(Any, FakeJobs()), forget_files=also_the_library
    )
    assert deps.forget_files is also_the_library
