"""Job progress as one status message edited in place, and results posted within the limit.

Everything goes through the bot token (channel messages), never the interaction webhook,
whose token dies after 15 minutes: renders can take longer than that.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import discord

from storyloom.bot.discord.buttons import job_buttons, look_buttons
from storyloom.bot.discord.context import NO_PINGS, quote
from storyloom.jobs.local import JobEvent
from storyloom.jobs.recovery import mark_posted
from storyloom.story.model import JobStatus, RenderJob
from storyloom.story.ports import Database

log = logging.getLogger(__name__)
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # a bot's upload limit in a guild without boosts
MAX_ATTACHMENTS = 10


@dataclass(frozen=True)
class Tracked:
    """Where a job's status message lives, and what its result post needs."""

    channel_id: int
    message_id: int
    title: str
    upload_limit: int
    character: str | None = None  # for sheet jobs: whose look the buttons lock
    job: RenderJob | None = None  # while it waits: to rewrite its place in line
    place: int | None = None  # the place in line the message shows now


def status_text(
    job: RenderJob, status: JobStatus, error: str | None = None, place: int | None = None
) -> str:
    """The status line of a job, as the status message shows it."""
    icon = {
        JobStatus.QUEUED: "⏳",
        JobStatus.RUNNING: "🎨",
        JobStatus.DONE: "✅",
        JobStatus.FAILED: "⚠️",
        JobStatus.CANCELLED: "✖️",
    }[status]
    text = f"{icon} {job.kind.value} job #{job.id} {status.value}"
    if status == JobStatus.QUEUED and place is not None:
        text += " — next in line" if place == 1 else f" — {place} in line, {place - 1} ahead"
    return f"{text}: {quote(error)}" if error else text


def fitting(files: tuple[Path, ...], limit: int) -> tuple[list[Path], list[Path]]:
    """Files that fit in one message under the upload limit (in order), and those left out."""
    sent: list[Path] = []
    left: list[Path] = []
    total = 0
    for path in files:
        size = path.stat().st_size
        if len(sent) < MAX_ATTACHMENTS and total + size <= limit:
            sent.append(path)
            total += size
        else:
            left.append(path)
    return sent, left


@dataclass
class DiscordNotifier:
    """The worker's notify callback for Discord.

    Status messages of jobs queued by this process are edited in place; a job this process
    never saw (queued before a restart) gets its result posted into its story's thread.
    """

    client: discord.Client
    db: Database | None = None  # set with the bot's deps: marks results posted exactly once
    # each waiting job's place in the (fair) line, from the jobs package; None: not shown
    places: Callable[[], Awaitable[dict[int, int]]] | None = None
    tracked: dict[int, Tracked] = field(default_factory=dict)

    def track(self, job_id: int, where: Tracked) -> None:
        """Remember where a job's status message is, for its later events."""
        self.tracked[job_id] = where

    async def place_of(self, job_id: int) -> int | None:
        """The job's place in line now, if the line is known and it still waits."""
        return None if self.places is None else (await self.places()).get(job_id)

    async def refresh_line(self) -> None:
        """A job left the line: the waiting jobs behind it moved up; edit their messages."""
        if self.places is None:
            return
        places = await self.places()
        for job_id, where in list(self.tracked.items()):
            place = places.get(job_id)
            if where.job is None or place is None or place == where.place:
                continue
            self.tracked[job_id] = replace(where, place=place)
            message = self.client.get_partial_messageable(where.channel_id).get_partial_message(
                where.message_id
            )
            text = status_text(where.job, JobStatus.QUEUED, place=place)
            await message.edit(content=text, allowed_mentions=NO_PINGS)

    async def __call__(self, event: JobEvent) -> None:
        where = self.tracked.get(event.job.id)
        if where is None:
            if event.status == JobStatus.DONE and event.files:
                await self.post_untracked(event)
            return
        channel = self.client.get_partial_messageable(where.channel_id)
        message = channel.get_partial_message(where.message_id)
        await message.edit(
            content=status_text(event.job, event.status, event.error),
            allowed_mentions=NO_PINGS,
            view=job_buttons(event.job, done=not event.status.active),
        )
        if event.status == JobStatus.DONE and event.files:
            await self.post(channel, where, event)
        if not event.status.active:
            self.tracked.pop(event.job.id, None)  # nothing more will happen to this message
        await self.refresh_line()

    async def post(
        self, channel: discord.PartialMessageable, where: Tracked, event: JobEvent
    ) -> None:
        """The result as attachments, never over the channel's upload limit, exactly once."""
        if self.db is not None and not await mark_posted(self.db, event.job.id):
            return  # another process (or an earlier event) already posted it
        sent, left = fitting(event.files, where.upload_limit)
        job = event.job
        lines = [f"**{quote(where.title)}** — {job.kind.value} for {quote(job.requested_by_name)}"]
        authors = await self.authors(job)
        if authors:
            lines.append("beats by " + ", ".join(quote(name) for name in authors))
        mib = where.upload_limit / 1024 / 1024
        for path in left:
            size = path.stat().st_size / 1024 / 1024
            lines.append(
                f"{path.name} ({size:.1f} MiB) is over this channel's {mib:.0f} MiB upload "
                "limit and was not attached."
            )
        await channel.send(
            "\n".join(lines),
            files=[discord.File(path) for path in sent],
            allowed_mentions=NO_PINGS,
            view=look_buttons(where.character) if where.character else discord.utils.MISSING,
        )

    async def authors(self, job: RenderJob) -> list[str]:
        """Who wrote the job's beats, in order of their first beat: the page's credits."""
        if self.db is None or job.first_position is None or job.last_position is None:
            return []
        async with self.db.reading() as uow:
            beats = await uow.beats.page(
                job.story_id, job.first_position - 1, job.last_position - job.first_position + 1
            )
        return list(dict.fromkeys(beat.author_name for beat in beats))

    async def post_untracked(self, event: JobEvent) -> None:
        """Post a result whose status message this process never saw, into its thread."""
        if self.db is None:
            return
        async with self.db.reading() as uow:
            story = await uow.stories.by_id(event.job.story_id)
            cast = await uow.characters.list(event.job.story_id) if story else []
        if story is None:
            return  # the story was deleted while its job ran: nowhere to post
        # a character sheet's post carries the lock / try-another buttons for its character
        character = next((c.name for c in cast if c.id == event.job.character_id), None)
        thread_id = int(story.thread.thread_id)
        where = Tracked(thread_id, 0, story.title, DEFAULT_UPLOAD_LIMIT, character)
        await self.post(self.client.get_partial_messageable(thread_id), where, event)


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
