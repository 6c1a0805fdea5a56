"""Job events on Discord: one status message edited in place, then the result post.

The job watcher calls the notifier with every change of a job row: its place in the fair
line, its start, its progress, and exactly once its outcome. Where the status message is
comes from this process's memory or, for a job queued before a restart, from the row
(`RenderJob.status_ref`), so a restarted bot still edits it.

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

import discord

from storyloom.bot.discord.buttons import job_buttons
from storyloom.bot.discord.context import NO_PINGS
from storyloom.bot.discord.results import post_result
from storyloom.bot.discord.status import StatusRef, status_text
from storyloom.jobs.events import JobEvent
from storyloom.story.model import JobStatus, RenderJob
from storyloom.story.ports import Database

log = logging.getLogger(__name__)


@dataclass
class Shown:
    """What this process last showed in a job's status message."""

    ref: StatusRef
    place: int | None = None
    edited_at: float | None = None  # of the last progress edit (clock seconds)


@dataclass
class DiscordNotifier:
    """The jobs' notify callback for Discord."""

    client: discord.Client
    db: Database | None = None  # set with the bot's deps
    # each waiting job's place in the (fair) line, from the jobs runtime; None: not shown
    places: Callable[[], Awaitable[dict[int, int]]] | None = None
    edit_every_s: float = 3.0
    clock: Callable[[], float] = time.monotonic
    shown: dict[int, Shown] = field(default_factory=dict)

    def track(self, job: RenderJob, ref: StatusRef, place: int | None = None) -> None:
        """Remember where a job's status message is (and the place it shows)."""
        self.shown[job.id] = Shown(ref, place)

    async def catch_up(self, job_id: int) -> None:
        """A just-tracked job may have ended, and been reported, before its status message
        existed (its result went to the thread): make the message say how it ended."""
        if self.db is None or (shown := self.shown.get(job_id)) is None:
            return
        async with self.db.reading() as uow:
            job = await uow.jobs.find(job_id)
        if job is None or job.status.active or not job.posted:
            return  # still running, or its outcome is yet to come and will edit it
        self.shown.pop(job_id, None)
        await self._edit(shown, job, job.status, status_text(job, job.status, job.error))

    async def place_of(self, job_id: int) -> int | None:
        """The job's place in line now, if the line is known and it still waits."""
        return None if self.places is None else (await self.places()).get(job_id)

    def _shown(self, job: RenderJob) -> Shown | None:
        """This process's record of the job's message, or one made from the job row."""
        shown = self.shown.get(job.id)
        if shown is None and (ref := StatusRef.parse(job.status_ref)) is not None:
            shown = self.shown[job.id] = Shown(ref)
        return shown

    async def __call__(self, event: JobEvent) -> None:
        job = event.job
        shown = self._shown(job)
        if event.status == JobStatus.QUEUED:
            if shown is not None and event.place is not None and event.place != shown.place:
                shown.place = event.place
                text = status_text(job, event.status, place=event.place)
                await self._edit(shown, job, event.status, text)
            return
        if event.status == JobStatus.RUNNING:
            if shown is not None:
                await self._show_running(event, shown)
            return
        # the outcome, told once: the status line, then the result post
        self.shown.pop(job.id, None)
        if shown is not None:
            text = status_text(job, event.status, event.error)
            await self._edit(shown, job, event.status, text)
        if event.status == JobStatus.DONE and event.files and self.db is not None:
            ref = shown.ref if shown is not None else None
            await post_result(self.client, self.db, job, event.files, ref)

    async def _show_running(self, event: JobEvent, shown: Shown) -> None:
        if event.progress is not None:
            now = self.clock()
            if shown.edited_at is not None and now - shown.edited_at < self.edit_every_s:
                return  # the next report shows it; the final status always edits
            shown.edited_at = now
        shown.place = None
        text = status_text(event.job, event.status, progress=event.progress)
        await self._edit(shown, event.job, event.status, text)

    async def _edit(self, shown: Shown, job: RenderJob, status: JobStatus, text: str) -> None:
        """Edit the status message; one that is gone (deleted by a moderator) is logged, and
        the result is still posted."""
        channel = self.client.get_partial_messageable(shown.ref.channel_id)
        message = channel.get_partial_message(shown.ref.message_id)
        try:
            await message.edit(
                content=text, allowed_mentions=NO_PINGS, view=job_buttons(job, status)
            )
        except discord.NotFound:
            log.warning("job %s: its status message %s is gone", job.id, shown.ref.encode())
