"""Job progress as one status message edited in place, and results posted within the limit.

Everything goes through the bot token (channel messages), never the interaction webhook,
whose token dies after 15 minutes: renders can take longer than that.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import discord

from storyloom.bot.discord.buttons import job_buttons, look_buttons
from storyloom.bot.discord.context import NO_PINGS, quote
from storyloom.jobs.local import JobEvent
from storyloom.story.model import JobStatus, RenderJob

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


def status_text(job: RenderJob, status: JobStatus, error: str | None = None) -> str:
    """The status line of a job, as the status message shows it."""
    icon = {
        JobStatus.QUEUED: "⏳",
        JobStatus.RUNNING: "🎨",
        JobStatus.DONE: "✅",
        JobStatus.FAILED: "⚠️",
        JobStatus.CANCELLED: "✖️",
    }[status]
    text = f"{icon} {job.kind.value} job #{job.id} {status.value}"
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
    """The worker's notify callback for Discord."""

    client: discord.Client
    tracked: dict[int, Tracked] = field(default_factory=dict)

    def track(self, job_id: int, where: Tracked) -> None:
        self.tracked[job_id] = where

    async def __call__(self, event: JobEvent) -> None:
        where = self.tracked.get(event.job.id)
        if where is None:
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

    async def post(
        self, channel: discord.PartialMessageable, where: Tracked, event: JobEvent
    ) -> None:
        """The result as attachments, never over the channel's upload limit."""
        sent, left = fitting(event.files, where.upload_limit)
        job = event.job
        lines = [f"**{quote(where.title)}** — {job.kind.value} for {quote(job.requested_by_name)}"]
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
