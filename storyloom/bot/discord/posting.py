"""Job events on Discord: one status message edited in place, then the result post.

Everything goes through the bot token (channel messages), never the interaction webhook,
whose token dies after 15 minutes: renders can take longer than that. Progress edits come
at most every `edit_every_s` seconds per message (Discord rate-limits edits); a change of
status always edits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import discord

from storyloom.bot.discord.buttons import job_buttons
from storyloom.bot.discord.context import NO_PINGS
from storyloom.bot.discord.results import post_result
from storyloom.bot.discord.status import StatusRef, status_text
from storyloom.jobs.local import JobEvent
from storyloom.jobs.recovery import mark_posted
from storyloom.story.model import JobStatus, RenderJob
from storyloom.story.ports import Database

log = logging.getLogger(__name__)


@dataclass
class Shown:
    """What this process last showed in a job's status message."""

    ref: StatusRef
    job: RenderJob | None = None  # while it waits: to rewrite its place in line
    place: int | None = None
    edited_at: float | None = None  # of the last progress edit (clock seconds)


@dataclass
class DiscordNotifier:
    """The jobs' notify callback for Discord."""

    client: discord.Client
    db: Database | None = None  # set with the bot's deps
    # each waiting job's place in the (fair) line, from the jobs package; None: not shown
    places: Callable[[], Awaitable[dict[int, int]]] | None = None
    edit_every_s: float = 3.0
    clock: Callable[[], float] = time.monotonic
    shown: dict[int, Shown] = field(default_factory=dict)

    def track(self, job: RenderJob, ref: StatusRef, place: int | None = None) -> None:
        """Remember where a job's status message is, for its later events."""
        self.shown[job.id] = Shown(ref, job, place)

    async def place_of(self, job_id: int) -> int | None:
        """The job's place in line now, if the line is known and it still waits."""
        return None if self.places is None else (await self.places()).get(job_id)

    def _message(self, ref: StatusRef) -> discord.PartialMessage:
        channel = self.client.get_partial_messageable(ref.channel_id)
        return channel.get_partial_message(ref.message_id)

    async def refresh_line(self) -> None:
        """A job left the line: the waiting jobs behind it moved up; edit their messages."""
        if self.places is None:
            return
        places = await self.places()
        for job_id, shown in list(self.shown.items()):
            place = places.get(job_id)
            if shown.job is None or place is None or place == shown.place:
                continue
            shown.place = place
            text = status_text(shown.job, JobStatus.QUEUED, place=place)
            await self._message(shown.ref).edit(content=text, allowed_mentions=NO_PINGS)

    async def __call__(self, event: JobEvent) -> None:
        job = event.job
        shown = self.shown.get(job.id)
        if event.status.active:
            if shown is not None:
                await self._show_running(event, shown)
            return
        if shown is not None:
            await self._message(shown.ref).edit(
                content=status_text(job, event.status, event.error),
                allowed_mentions=NO_PINGS,
                view=job_buttons(job, done=True),
            )
            self.shown.pop(job.id, None)  # nothing more will happen to this message
        if event.status == JobStatus.DONE and event.files:
            await self.post(event, shown.ref if shown is not None else None)
        await self.refresh_line()

    async def _show_running(self, event: JobEvent, shown: Shown) -> None:
        if event.progress is not None:
            now = self.clock()
            if shown.edited_at is not None and now - shown.edited_at < self.edit_every_s:
                return  # the next report shows it; the final status always edits
            shown.edited_at = now
        shown.job = None  # it no longer waits in line
        await self._message(shown.ref).edit(
            content=status_text(event.job, event.status, progress=event.progress),
            allowed_mentions=NO_PINGS,
            view=job_buttons(event.job, done=False),
        )

    async def post(self, event: JobEvent, ref: StatusRef | None) -> None:
        """The result into the status message's channel (or the story's thread), once."""
        if self.db is None:
            return
        if not await mark_posted(self.db, event.job.id):
            return  # another process (or an earlier event) already posted it
        await post_result(self.client, self.db, event.job, event.files, ref)


async def post_pending(notifier: DiscordNotifier, db: Database, out_dir: Path) -> int:
    """After a restart: post results that finished but were never posted; return how many."""
    async with db.reading() as uow:
        pending = await uow.jobs.unposted()
    for job in pending:
        # the worker writes a job's files to out_dir/job-<id> (storyloom.jobs.local)
        folder = out_dir / f"job-{job.id}"
        files = tuple(sorted(folder.iterdir())) if folder.is_dir() else ()
        await notifier(JobEvent(job, JobStatus.DONE, files))
    return len(pending)
