"""Job events → the job's status message edited in place, results uploaded into the thread.

This is Slack's courier for the outbox (`storyloom.jobs.delivery`): `show` edits a status
message with a passing change (its place in line, its start, its progress), `settle`
delivers an outcome in steps that are each made once: the result's upload, then the status
message's final edit, which carries the buttons for what comes next. A render is two
messages: a file goes up with the upload API as a message of its own, and a message of
files cannot carry buttons. A job with no status message (or whose message was deleted)
gets its buttons in a message under the upload. An upload begun before a crash is looked
for in the thread (its comment names the job) before it is made again, so it is never
posted twice. A rate limit is handed back to the lane (`Retry`), which waits alone; a
channel the bot lost, or a workspace that removed the app, is `Undeliverable` (logged once).

A job queued by this process is tracked in memory (its status message, its story's
title); any other is found from its row: `status_ref` names its status message, its story
the thread. An outcome always reads the row, which has the last word on where it goes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from storyloom.bot.slack import blocks
from storyloom.bot.slack.refs import StatusRef
from storyloom.jobs import status_refs
from storyloom.jobs.courier import Owed, Retry, Undeliverable
from storyloom.jobs.events import JobEvent
from storyloom.story.alt_text import alt_text
from storyloom.story.escaping import escape_slack
from storyloom.story.model import JobKind, JobStatus, RenderJob
from storyloom.story.ports import Database

log = logging.getLogger(__name__)

# In HTTP/OAuth mode every workspace has its own bot token: the notifier asks for a client.
ClientFor = Callable[[str], Awaitable[AsyncWebClient]]

# The status message is gone (deleted by someone, or too old to edit): the outcome still
# goes to the thread.
MESSAGE_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
# The bot can never post here again (channel deleted or archived, bot removed, app
# uninstalled): nothing of this outcome can be delivered.
CHANNEL_GONE = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "account_inactive",
        "token_revoked",
        "invalid_auth",
        "team_access_not_granted",
    }
)
THREAD_SEARCH_LIMIT = 200  # replies read when looking for an upload begun before a crash


class NotInstalled(Exception):
    """A job's workspace has no install any more (the app was removed from it)."""


@dataclass(frozen=True)
class SlackTracked:
    """Where a job's status message lives and what its result post needs."""

    ref: StatusRef
    title: str
    character: str | None = None  # a sheet job: whose look its buttons lock
    place: int | None = None  # the place in line the message shows now
    # its status message was claimed by a request that has not posted it (yet, or ever:
    # see `status_refs.take_over`)
    claimed: bool = False


def _platform_error(error: SlackApiError) -> Exception:
    """A Slack error as the outbox understands it."""
    code = str(error.response.get("error", ""))
    if code == "ratelimited" or error.response.status_code == 429:
        after = float(error.response.headers.get("Retry-After", 1) or 1)
        return Retry(after, f"Slack rate limit ({code or 429})")
    if code in CHANNEL_GONE:
        return Undeliverable(f"Slack answered {code}")
    return error


def upload_marker(job: RenderJob) -> str:
    """What a result's comment says that names its job (and finds it again after a crash)."""
    return f"job #{job.id}"


@dataclass
class SlackNotifier:
    """The outbox's courier for Slack."""

    client_for: ClientFor
    db: Database
    tracked: dict[int, SlackTracked] = field(default_factory=dict)

    def track(self, job_id: int, where: SlackTracked) -> None:
        """Remember where a job's status message is, for its later events."""
        self.tracked[job_id] = where

    async def show(self, event: JobEvent) -> None:
        """A passing change on the status message (nothing if the job has none yet)."""
        job = event.job
        where = self.tracked.get(job.id) or await self.locate(job)
        if where is None or not (where.ref.message_ts or where.claimed):
            return
        if event.status == JobStatus.QUEUED and event.place == where.place:
            return  # the message already shows this place
        try:
            client = await self.client_for(where.ref.team_id)
        except NotInstalled:
            return  # the outcome logs it, once
        text, status_blocks = blocks.status(
            job,
            event.status,
            where.ref.thread_ts,
            place=event.place,
            progress=event.progress,
            error=event.error,
        )
        if not where.ref.message_ts:
            recovered = await self._post_abandoned(client, where, job, text, status_blocks)
            if recovered is not None:
                self.tracked[job.id] = replace(recovered, place=event.place)
            return
        await self.edit(client, where.ref, text, status_blocks)
        # what this process holds now (never a reference read while it was being tracked)
        if (current := self.tracked.get(job.id)) is not None:
            self.tracked[job.id] = replace(current, place=event.place)

    async def settle(self, owed: Owed) -> None:
        """The outcome: the status message's last word, then the result and its buttons."""
        job = owed.job
        located = await self.locate(job)
        if located is None:
            raise Undeliverable("its story was deleted")
        where = located
        if (known := self.tracked.get(job.id)) is not None:
            where = replace(where, character=known.character or where.character)
        try:
            client = await self.client_for(where.ref.team_id)
        except NotInstalled as error:
            raise Undeliverable(str(error)) from error

        async def final_edit(retried: bool) -> None:
            nonlocal where
            text, status_blocks = blocks.status(
                job, job.status, where.ref.thread_ts, error=job.error
            )
            if where.ref.message_ts:
                await self.edit(client, where.ref, text, status_blocks)
            elif where.claimed:  # its request died before posting it: posted now
                posted = await self._post_abandoned(
                    client, where, job, text, status_blocks, wait=True
                )
                where = posted or where
            # else no status message at all: the thread gets the result

        if not (job.status == JobStatus.DONE and owed.files):
            await owed.step("status", final_edit)
            self.tracked.pop(job.id, None)
            return

        async def upload(retried: bool) -> None:
            if retried and await self.in_thread(client, where.ref, upload_marker(job)):
                return  # it got there before the crash
            await self.post(client, where, owed.event)

        # files cannot be added by chat.update: the result is uploaded once, then the
        # status message, above it, becomes its last word and carries what comes next (its
        # buttons); a render is two messages, the status message and the upload
        await owed.step("result", upload)
        follow_up = self.follow_up(where, job)

        async def outcome(retried: bool) -> None:
            # read again: the status message may have become known during the upload (its
            # reopened step would not show in this delivery's steps)
            now = await self.locate(job)
            current = where if now is None else now
            ref = current.ref
            text, status_blocks = blocks.status(job, job.status, ref.thread_ts)
            extra = [] if follow_up is None or job.kind == JobKind.PANEL else follow_up[1]
            edited = bool(ref.message_ts) and await self.edit(
                client, ref, text, [*status_blocks, *extra]
            )
            if not ref.message_ts and current.claimed:
                # its request died before posting it: posted now, already the last word
                posted = await self._post_abandoned(
                    client, current, job, text, [*status_blocks, *extra], wait=True
                )
                edited = posted is not None
            if edited or follow_up is None:
                return
            # no status message (or it was deleted): the buttons go under the upload
            offer, buttons = follow_up
            if retried and await self.in_thread(client, where.ref, upload_marker(job), offer):
                return
            await self.call(
                client.chat_postMessage(
                    channel=where.ref.channel_id,
                    thread_ts=where.ref.thread_ts,
                    text=offer,
                    blocks=buttons,
                )
            )

        await owed.step("outcome", outcome)
        self.tracked.pop(job.id, None)  # nothing more will happen to this message

    async def _post_abandoned(
        self,
        client: AsyncWebClient,
        where: SlackTracked,
        job: RenderJob,
        text: str,
        status_blocks: list[blocks.Block],
        *,
        wait: bool = False,
    ) -> SlackTracked | None:
        """Post the status message of a job whose claim's request died before posting it
        (`status_refs.take_over`); None if there is none to post. A claim still within its
        lease is waited for (`Retry`) if `wait`, else left alone."""
        if not await status_refs.take_over_to_post(self.db, job.id, wait=wait):
            return None
        try:
            posted = await client.chat_postMessage(
                channel=where.ref.channel_id,
                thread_ts=where.ref.thread_ts,
                text=text,
                blocks=status_blocks,
            )
        except SlackApiError as error:
            raise _platform_error(error) from error
        ref = replace(where.ref, message_ts=str(posted["ts"]))
        log.info("job %s: posted the status message its request died before posting", job.id)
        await status_refs.posted(self.db, job.id, ref.encode())
        return replace(where, ref=ref, claimed=False)

    async def locate(self, job: RenderJob) -> SlackTracked | None:
        """Where a job's messages go, from the database: its status message (`status_ref`,
        read afresh), else only its story's thread; None if its story was deleted."""
        async with self.db.reading() as uow:
            story = await uow.stories.by_id(job.story_id)
            cast = await uow.characters.list(job.story_id) if story else []
            row = await uow.jobs.find(job.id) if story else None
        if story is None:
            return None
        character = next((c.name for c in cast if c.id == job.character_id), None)
        thread = story.thread
        status_ref = row.status_ref if row is not None else job.status_ref
        ref = StatusRef.decode(status_ref) or StatusRef(
            thread.workspace_id, thread.channel_id, thread.thread_id, message_ts=""
        )
        claimed = status_refs.claimed_at(status_ref) is not None
        return SlackTracked(ref, story.title, character, claimed=claimed)

    async def call(self, request: Awaitable[object]) -> None:
        """A Web API call, its errors turned into the outbox's."""
        try:
            await request
        except SlackApiError as error:
            raise _platform_error(error) from error

    async def edit(
        self, client: AsyncWebClient, ref: StatusRef, text: str, status_blocks: list[blocks.Block]
    ) -> bool:
        """Edit a status message in place; False for a message someone deleted (logged and
        skipped: the result is still posted into the thread)."""
        try:
            await client.chat_update(
                channel=ref.channel_id, ts=ref.message_ts, text=text, blocks=status_blocks
            )
        except SlackApiError as error:
            if error.response.get("error") in MESSAGE_GONE:
                log.warning(
                    "status message %s not edited: %s", ref.encode(), error.response["error"]
                )
                return False
            raise _platform_error(error) from error
        return True

    async def in_thread(
        self, client: AsyncWebClient, ref: StatusRef, marker: str, text: str | None = None
    ) -> bool:
        """Whether the bot already posted, in the thread, the result whose comment has
        `marker` (with `text`: a message with that text after it)."""
        try:
            found = await client.conversations_replies(
                channel=ref.channel_id, ts=ref.thread_ts, limit=THREAD_SEARCH_LIMIT
            )
        except SlackApiError as error:
            raise _platform_error(error) from error
        messages = list(found.get("messages") or [])
        for at, message in enumerate(messages):
            if message.get("files") and marker in str(message.get("text", "")):
                later = messages[at + 1 :]
                return text is None or any(text == m.get("text") for m in later)
        return False

    async def post(self, client: AsyncWebClient, where: SlackTracked, event: JobEvent) -> None:
        """Upload the result's files into the story thread, credited."""
        job, ref = event.job, where.ref
        comment = (
            f"*{escape_slack(where.title)}* — {blocks.job_name(job)} "
            f"for {escape_slack(job.requested_by_name)} · {upload_marker(job)}"
        )
        alt = alt_text(where.title, job, where.character)  # read in place of the picture
        await self.call(
            client.files_upload_v2(
                channel=ref.channel_id,
                thread_ts=ref.thread_ts,
                initial_comment=comment,
                file_uploads=[
                    {"file": str(path), "title": path.name, "alt_txt": alt} for path in event.files
                ],
            )
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
