"""Job events → the job's status message edited in place, results uploaded into the thread.

A job queued by this process is tracked in memory (where its status message is, its
story's title). A job this process never saw (queued before a restart, or by another
process) is found from its row: its story names the thread, its `status_ref` the status
message. Results go up with `files_upload_v2` (the old `files.upload` is retired), once:
the job row's `posted` flag guards them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from storyloom.bot.slack import blocks
from storyloom.bot.slack.refs import StatusRef
from storyloom.jobs.local import JobEvent
from storyloom.jobs.recovery import mark_posted
from storyloom.story.escaping import escape_slack
from storyloom.story.model import JobKind, JobStatus, RenderJob
from storyloom.story.ports import Database

log = logging.getLogger(__name__)

# In HTTP/OAuth mode every workspace has its own bot token: the notifier asks for a client.
ClientFor = Callable[[str], Awaitable[AsyncWebClient]]
# every waiting job's place in the fair line (1 starts next)
Places = Callable[[], Awaitable[dict[int, int]]]


class NotInstalled(Exception):
    """A job's workspace has no install any more (the app was removed from it)."""


@dataclass(frozen=True)
class SlackTracked:
    """Where a job's status message lives and what its result post needs."""

    ref: StatusRef
    title: str
    character: str | None = None  # a sheet job: whose look its buttons lock
    job: RenderJob | None = None  # while it waits: to rewrite its place in line
    place: int | None = None  # the place in line the message shows now


@dataclass
class SlackNotifier:
    """The job events' notify callback for Slack."""

    client_for: ClientFor
    db: Database
    places: Places | None = None
    tracked: dict[int, SlackTracked] = field(default_factory=dict)

    def track(self, job_id: int, where: SlackTracked) -> None:
        """Remember where a job's status message is, for its later events."""
        self.tracked[job_id] = where

    async def __call__(self, event: JobEvent) -> None:
        where = self.tracked.get(event.job.id) or await self.locate(event.job)
        if where is None:
            return  # its story was deleted: there is nothing left to show it in
        ref = where.ref
        try:
            client = await self.client_for(ref.team_id)
        except NotInstalled as error:
            log.warning("job %d: %s; its outcome is not shown", event.job.id, error)
            self.tracked.pop(event.job.id, None)
            return
        if ref.message_ts:
            text, status_blocks = blocks.status(
                event.job, event.status, ref.thread_ts, progress=event.progress, error=event.error
            )
            await self.edit(client, ref, text, status_blocks)
        if event.status == JobStatus.DONE and event.files:
            await self.post(client, where, event)
        if not event.status.active:
            self.tracked.pop(event.job.id, None)  # nothing more will happen to this message
        elif event.status == JobStatus.RUNNING and event.job.id in self.tracked:
            self.tracked[event.job.id] = replace(where, job=None, place=None)  # left the line
        await self.refresh_line()

    async def catch_up(self, job_id: int) -> None:
        """Edit a just-tracked job's message if the job ended before it was tracked (its
        final event then found no message to edit; its result went to the thread)."""
        where = self.tracked.get(job_id)
        async with self.db.reading() as uow:
            job = await uow.jobs.find(job_id)
        if where is None or job is None or job.status.active:
            return
        del self.tracked[job_id]
        text, status_blocks = blocks.status(job, job.status, where.ref.thread_ts, error=job.error)
        await self.edit(await self.client_for(where.ref.team_id), where.ref, text, status_blocks)

    async def locate(self, job: RenderJob) -> SlackTracked | None:
        """Where an untracked job's messages go: its story's thread, from the database."""
        async with self.db.reading() as uow:
            story = await uow.stories.by_id(job.story_id)
            cast = await uow.characters.list(job.story_id) if story else []
        if story is None:
            return None
        character = next((c.name for c in cast if c.id == job.character_id), None)
        thread = story.thread
        ref = StatusRef(thread.workspace_id, thread.channel_id, thread.thread_id, message_ts="")
        return SlackTracked(ref, story.title, character)

    async def refresh_line(self) -> None:
        """A job left the line: the waiting jobs behind it moved up; edit their messages."""
        if self.places is None or not any(w.job for w in self.tracked.values()):
            return
        places = await self.places()
        for job_id, where in list(self.tracked.items()):
            place = places.get(job_id)
            if where.job is None or place is None or place == where.place:
                continue
            self.tracked[job_id] = replace(where, place=place)
            ref = where.ref
            text, status_blocks = blocks.status(
                where.job, JobStatus.QUEUED, ref.thread_ts, place=place
            )
            await self.edit(await self.client_for(ref.team_id), ref, text, status_blocks)

    async def edit(
        self, client: AsyncWebClient, ref: StatusRef, text: str, status_blocks: list[blocks.Block]
    ) -> None:
        """Edit a status message in place. A message someone deleted (or a channel archived
        since) is logged and skipped: the result is still posted into the thread."""
        try:
            await client.chat_update(
                channel=ref.channel_id, ts=ref.message_ts, text=text, blocks=status_blocks
            )
        except SlackApiError as error:
            log.warning("status message %s not edited: %s", ref.encode(), error.response["error"])

    async def post(self, client: AsyncWebClient, where: SlackTracked, event: JobEvent) -> None:
        """Upload the result's files into the story thread, credited, exactly once."""
        if not await mark_posted(self.db, event.job.id):
            return  # an earlier event (or another process) already posted it
        job, ref = event.job, where.ref
        comment = (
            f"*{escape_slack(where.title)}* — {job.kind.value} "
            f"for {escape_slack(job.requested_by_name)}"
        )
        await client.files_upload_v2(
            channel=ref.channel_id,
            thread_ts=ref.thread_ts,
            initial_comment=comment,
            file_uploads=[{"file": str(path), "title": path.name} for path in event.files],
        )
        follow_up = self.follow_up(where, job)
        if follow_up is not None:
            text, buttons = follow_up
            await client.chat_postMessage(
                channel=ref.channel_id, thread_ts=ref.thread_ts, text=text, blocks=buttons
            )

    def follow_up(
        self, where: SlackTracked, job: RenderJob
    ) -> tuple[str, list[blocks.Block]] | None:
        """What a result offers next: lock or try another look under a character sheet."""
        if where.character is not None and job.kind in (JobKind.SHEET, JobKind.REROLL):
            text = f"Keep {escape_slack(where.character)}'s look?"
            return text, blocks.look_buttons(where.ref.thread_ts, where.character)
        return None
