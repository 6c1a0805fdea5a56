"""A finished job's result: its files within the upload limit, the credits, its buttons.

It goes into the job's status message (an edit: one message per render), or, for a job
without one (or whose message was deleted), into a post of its own in the story's thread.
Either way through the bot token: the interaction token would have died after 15 minutes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import discord

from storyloom.bot.discord.buttons import result_buttons
from storyloom.bot.discord.context import NO_PINGS, quote
from storyloom.bot.discord.fit import Fitted, fit_files
from storyloom.bot.discord.status import DEFAULT_UPLOAD_LIMIT, StatusRef
from storyloom.story.alt_text import alt_text
from storyloom.story.model import Beat, RenderJob
from storyloom.story.ports import Database

MAX_CONTENT = 2000  # Discord's limit on a message's text
MAX_CREDITED = 20  # names in the credits line before "and N more"


def human(size: float) -> str:
    """A size as members read it."""
    return f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB"


def result_marker(job: RenderJob) -> str:
    """What a result post says that names its job (and finds it again after a crash)."""
    return f"job #{job.id}"


def credit_lines(title: str, job: RenderJob, authors: list[str]) -> list[str]:
    """Who asked for it and who wrote its beats, member text escaped."""
    lines = [
        f"**{quote(title)}** — {job.kind.value} for {quote(job.requested_by_name)} "
        f"· {result_marker(job)}"
    ]
    if authors:
        named = ", ".join(quote(name) for name in authors[:MAX_CREDITED])
        more = len(authors) - MAX_CREDITED
        lines.append("beats by " + named + (f" and {more} more" if more > 0 else ""))
    return lines


def fit_lines(fitted: Fitted, limit: int) -> list[str]:
    """What was sent smaller, and what could not be sent at all (named, never attached)."""
    lines = []
    for attachment in fitted.attachments:
        if attachment.shrunk:
            lines.append(
                f"{attachment.original.name} was sent smaller ({attachment.path.name}, "
                f"{human(attachment.path.stat().st_size)}) to fit this channel's "
                f"{human(limit)} upload limit."
            )
    for path, size in fitted.left_out:
        lines.append(
            f"{path.name} ({human(size)}) is over this channel's {human(limit)} upload limit "
            "and was not attached."
        )
    return lines


async def post_result(
    client: discord.Client,
    db: Database,
    job: RenderJob,
    files: tuple[Path, ...],
    ref: StatusRef | None,
    status_line: str | None = None,
) -> bool:
    """The job's files with credits and buttons, False if its story is gone. With a
    `status_line` they go into the status message itself (`ref`'s message, its text the
    status line above the credits): one message per render. Without, a post of their own."""
    async with db.reading() as uow:
        story = await uow.stories.by_id(job.story_id)
        if story is None:
            return False  # the story was deleted while its job ran: nowhere to post
        cast = await uow.characters.list(story.id) if job.character_id is not None else []
        beats: Sequence[Beat] = job.beats  # as they were when it was asked for
        if not beats and job.first_position is not None and job.last_position is not None:
            count = job.last_position - job.first_position + 1
            beats = await uow.beats.page(story.id, job.first_position - 1, count)
    # a character sheet's post carries the lock / try-another buttons for its character
    character = next((c.name for c in cast if c.id == job.character_id), None)
    authors = list(dict.fromkeys(beat.author_name for beat in beats))
    channel_id = ref.channel_id if ref is not None else int(story.thread.thread_id)
    limit = ref.upload_limit if ref is not None else DEFAULT_UPLOAD_LIMIT
    channel = client.get_partial_messageable(channel_id)
    alt = alt_text(story.title, job, character)  # each attachment's description
    with tempfile.TemporaryDirectory(prefix="storyloom-upload-") as work_dir:
        fitted = await fit_files(files, limit, Path(work_dir))
        lines = credit_lines(story.title, job, authors) + fit_lines(fitted, limit)
        attached = [
            discord.File(a.path, filename=a.path.name, description=alt) for a in fitted.attachments
        ]
        view = result_buttons(job, character)
        if status_line is not None and ref is not None:
            # an edit's attachments replace the message's (a progress preview goes): made
            # again after a crash, it ends the same
            content = "\n".join([status_line, *lines])[:MAX_CONTENT]
            message = channel.get_partial_message(ref.message_id)
            await message.edit(
                content=content, attachments=attached, allowed_mentions=NO_PINGS, view=view
            )
            return True
        await channel.send(
            "\n".join(lines)[:MAX_CONTENT], files=attached, allowed_mentions=NO_PINGS, view=view
        )
    return True
