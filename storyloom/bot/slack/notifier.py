"""Job events → the job's status message edited in place, results uploaded into the thread.

The events come from the job watcher (`storyloom.jobs.watcher`), which reads the job rows:
a waiting job's new place, its start and progress, and its one final event, also for jobs
that ended while the bot was down. It reports each outcome once (it marks the row before
calling here and gives the mark back if this raises), so nothing here counts posts.

A job queued by this process is tracked in memory (its status message, its story's
title). Any other job — queued before a restart, or by another bot process — is found from
its row: `status_ref` names its status message, its story the thread.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from storyloom.bot.slack import blocks
from storyloom.bot.slack.refs import StatusRef
from storyloom.jobs.events import JobEvent
from storyloom.story.alt_text import alt_text
from storyloom.story.escaping import escape_slack
from storyloom.story.model import JobKind, JobStatus, RenderJob
from storyloom.story.ports import Database

log = logging.getLogger(__name__)

# In HTTP/OAuth mode every workspace has its own bot token: the notifier asks for a client.
ClientFor = Callable[[str], Awaitable[AsyncWebClient]]


class NotInstalled(Exception):
    """A job's workspace has no install any more (the app was removed from it)."""


@dataclass(frozen=True)
class SlackTracked:
    """Where a job's status message lives and what its result post needs."""

    ref: StatusRef
    title: str
    character: str | None = None  # a sheet job: whose look its buttons lock
    place: int | None = None  # the place in line the message shows now


@dataclass
class SlackNotifier:
    """The job events' notify callback for Slack."""

    client_for: ClientFor
    db: Database
    tracked: dict[int, SlackTracked] = field(default_factory=dict)

    def track(self, job_id: int, where: SlackTracked) -> None:
        """Remember where a job's status message is, for its later events."""
        self.tracked[job_id] = where

    async def __call__(self, event: JobEvent) -> None:
        job = event.job
        where = self.tracked.get(job.id) or await self.locate(job)
        if where is None:
            return  # its story was deleted: there is nothing left to show it in
        if event.status == JobStatus.QUEUED and event.place == where.place:
            return  # the message already shows this place
        ref = where.ref
        try:
            client = await self.client_for(ref.team_id)
        except NotInstalled as error:
            log.warning("job %d: %s; its outcome is not shown", job.id, error)
            self.tracked.pop(job.id, None)
            return
        if ref.message_ts:
            text, status_blocks = blocks.status(
                job,
                event.status,
                ref.thread_ts,
                place=event.place,
                progress=event.progress,
                error=event.error,
            )
            await self.edit(client, ref, text, status_blocks)
        if job.id in self.tracked:
            self.tracked[job.id] = replace(where, place=event.place)
        if event.status == JobStatus.DONE and event.files:
            await self.post(client, where, event)
        if not event.status.active:
            self.tracked.pop(job.id, None)  # nothing more will happen to this message

    async def locate(self, job: RenderJob) -> SlackTracked | None:
        """Where an untracked job's messages go: its status message (`status_ref`), else
        only its story's thread, from the database."""
        async with self.db.reading() as uow:
            story = await uow.stories.by_id(job.story_id)
            cast = await uow.characters.list(job.story_id) if story else []
        if story is None:
            return None
        character = next((c.name for c in cast if c.id == job.character_id), None)
        thread = story.thread
        ref = StatusRef.decode(job.status_ref) or StatusRef(
            thread.workspace_id, thread.channel_id, thread.thread_id, message_ts=""
        )
        return SlackTracked(ref, story.title, character)

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
        """Upload the result's files into the story thread, credited, and what it offers
        next (lock a look, redraw a panel)."""
        job, ref = event.job, where.ref
        comment = (
            f"*{escape_slack(where.title)}* — {blocks.job_name(job)} "
            f"for {escape_slack(job.requested_by_name)}"
        )
        alt = alt_text(where.title, job, where.character)  # read in place of the picture
        await client.files_upload_v2(
            channel=ref.channel_id,
            thread_ts=ref.thread_ts,
            initial_comment=comment,
            file_uploads=[
                {"file": str(path), "title": path.name, "alt_txt": alt} for path in event.files
            ],
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
        """Under a character sheet: lock or try another look. Under a page: redraw one of
        its panels. Under a redrawn panel: redraw it again, or render the page."""
        thread_ts = where.ref.thread_ts
        if where.character is not None and job.kind in (JobKind.SHEET, JobKind.REROLL):
            text = f"Keep {escape_slack(where.character)}'s look?"
            return text, blocks.look_buttons(thread_ts, where.character)
        if not job.beats:
            return None
        if job.kind == JobKind.PAGE:
            return "Not happy with a panel? Draw it again:", blocks.redraw_panels(thread_ts, job)
        if job.kind == JobKind.PANEL:
            return f"Panel {job.beats[0].position} drawn again.", blocks.after_redraw(
                thread_ts, job
            )
        return None
