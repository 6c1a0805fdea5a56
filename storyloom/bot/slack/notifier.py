"""Job events → the job's status message edited in place, results uploaded into the thread.

Results go up with `files_upload_v2` (the old `files.upload` is retired); each job's
result is posted once, guarded by the job row's `posted` flag.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from slack_sdk.web.async_client import AsyncWebClient

from storyloom.bot.slack import blocks
from storyloom.jobs.local import JobEvent
from storyloom.jobs.recovery import mark_posted
from storyloom.story.escaping import escape_slack
from storyloom.story.model import JobStatus
from storyloom.story.ports import Database

log = logging.getLogger(__name__)

# In HTTP/OAuth mode every workspace has its own bot token: the notifier asks for a client.
ClientFor = Callable[[str], Awaitable[AsyncWebClient]]


@dataclass(frozen=True)
class SlackTracked:
    """Where a job's status message lives and what its result post needs."""

    team_id: str
    channel_id: str
    message_ts: str
    thread_ts: str
    title: str
    character: str | None = None


@dataclass
class SlackNotifier:
    """The worker's notify callback for Slack."""

    client_for: ClientFor
    db: Database | None = None
    tracked: dict[int, SlackTracked] = field(default_factory=dict)

    def track(self, job_id: int, where: SlackTracked) -> None:
        """Remember where a job's status message is, for its later events."""
        self.tracked[job_id] = where

    async def __call__(self, event: JobEvent) -> None:
        where = self.tracked.get(event.job.id)
        if where is None:
            return  # queued by another process: its status message is not ours to edit
        client = await self.client_for(where.team_id)
        text, status_blocks = blocks.status(event.job, event.status, where.thread_ts, event.error)
        await client.chat_update(
            channel=where.channel_id, ts=where.message_ts, text=text, blocks=status_blocks
        )
        if event.status == JobStatus.DONE and event.files:
            await self.post(client, where, event)
        if not event.status.active:
            del self.tracked[event.job.id]

    async def post(self, client: AsyncWebClient, where: SlackTracked, event: JobEvent) -> None:
        """Upload the result's files into the story thread, credited, exactly once."""
        if self.db is not None and not await mark_posted(self.db, event.job.id):
            return
        job = event.job
        comment = (
            f"*{escape_slack(where.title)}* — {job.kind.value} "
            f"for {escape_slack(job.requested_by_name)}"
        )
        await client.files_upload_v2(
            channel=where.channel_id,
            thread_ts=where.thread_ts,
            initial_comment=comment,
            file_uploads=[{"file": str(path), "title": path.name} for path in event.files],
        )
        if where.character is not None:
            await client.chat_postMessage(
                channel=where.channel_id,
                thread_ts=where.thread_ts,
                text=f"Keep {escape_slack(where.character)}'s look?",
                blocks=blocks.look_buttons(where.thread_ts, where.character),
            )
