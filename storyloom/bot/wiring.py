"""The story service as every chat front end wires it: one builder, from the settings.

`storyloom discord`, `storyloom slack` and `storyloom console` each open their database
and job runtime in their own composition root (bot/discord/run.py, bot/slack/run.py,
bot/console.py, started by cli.py); the service's dependencies (styles, the caps on waiting
jobs, the caps on one job, every server's starting settings, file clean-up) are built here,
so the three front ends cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from storyloom.bot.server_defaults import server_defaults
from storyloom.config import Settings
from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs.admission import JobAdmission, render_limits
from storyloom.story.service import Deps

if TYPE_CHECKING:
    from storyloom.jobs.runtime import JobRuntime
    from storyloom.story.model import DeletedStory
    from storyloom.story.ports import Database


def story_deps(
    settings: Settings,
    db: Database,
    jobs: JobRuntime,
    *,
    forget_files: Callable[[DeletedStory], Awaitable[None]] | None = None,
) -> Deps:
    """What every use case needs, for a front end whose jobs run through `jobs`; a deleted
    story's files are forgotten by `forget_files` (by default the job runtime's)."""
    return Deps(
        db,
        jobs.queue,
        STYLE_NAMES,
        settings.style,
        admit_job=JobAdmission.from_settings(settings),
        render_limits=render_limits(settings),
        server_defaults=server_defaults(settings),
        forget_files=forget_files or jobs.forget_files(),
    )
