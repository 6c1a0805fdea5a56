"""Job events on Discord: one status message edited in place, at last into the result.

This is Discord's courier for the outbox (`storyloom.jobs.delivery`): `show` edits the
status message with a passing change (its place in the fair line, its start, its
progress), `settle` delivers an outcome in steps each made once: the status message's last
word, which carries the result's files, credits and buttons (one message per render). Only
a job without a status message (or whose message was deleted) gets a post of its own; a
post begun before a crash is looked for in the channel (the bot's message naming the job,
not the status message) before it is made again, so it is never posted twice.
Where the status message is comes from this process's memory or the job row
(`RenderJob.status_ref`), so a restarted bot still edits it.

Everything goes through the bot token (channel messages), never the interaction webhook,
whose token dies after 15 minutes: renders can take longer than that. Progress edits come
at most every `edit_every_s` seconds per message (Discord rate-limits edits); a change of
status always edits. discord.py waits out 429s per route itself (a channel's bucket is its
lane's); a wait longer than its limit comes back as `Retry` for the lane.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import discord

from storyloom.bot.discord.buttons import job_buttons
from storyloom.bot.discord.context import NO_PINGS
from storyloom.bot.discord.results import post_result, result_marker
from storyloom.bot.discord.status import DEFAULT_UPLOAD_LIMIT, StatusRef, status_text
from storyloom.jobs import status_refs
from storyloom.jobs.courier import Owed, Retry, Undeliverable
from storyloom.jobs.events import JobEvent
from storyloom.story.model import JobStatus, RenderJob
from storyloom.story.ports import Database

log = logging.getLogger(__name__)

UNKNOWN_MESSAGE = 10008  # Discord's code for a message that is gone
PREVIEW_NAME = "preview.jpg"  # the progress preview's attachment
HISTORY_SEARCH_LIMIT = 100  # messages read when looking for a post begun before a crash


@dataclass
class Shown:
    """What this process last showed in a job's status message."""

    ref: StatusRef
    place: int | None = None
    edited_at: float | None = None  # of the last progress edit (clock seconds)
    preview: bytes | None = None  # the preview image the message shows now


def _platform_error(error: Exception) -> Exception:
    """A discord.py error as the outbox understands it."""
    if isinstance(error, discord.RateLimited):
        return Retry(error.retry_after, "Discord rate limit")
    if isinstance(error, discord.NotFound | discord.Forbidden):
        # the channel is gone, or the bot may no longer see or post in it
        return Undeliverable(f"Discord answered {error.status} ({error.code})")
    return error


@dataclass
class DiscordNotifier:
    """The outbox's courier for Discord."""

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

    async def place_of(self, job_id: int) -> int | None:
        """The job's place in line now, if the line is known and it still waits."""
        return None if self.places is None else (await self.places()).get(job_id)

    def _shown(self, job: RenderJob) -> Shown | None:
        """This process's record of the job's message, or one made from the job row."""
        shown = self.shown.get(job.id)
        if shown is None and (ref := StatusRef.parse(job.status_ref)) is not None:
            shown = self.shown[job.id] = Shown(ref)
        return shown

    async def show(self, event: JobEvent) -> None:
        """A passing change on the job's status message."""
        job = event.job
        shown = self._shown(job)
        if shown is None:
            text = status_text(job, event.status, place=event.place, progress=event.progress)
            ref = await self._post_abandoned(job, event.status, text, wait=False)
            if ref is not None:
                self.shown[job.id] = Shown(ref, event.place)
            return
        if event.status == JobStatus.QUEUED:
            if event.place is not None and event.place != shown.place:
                shown.place = event.place
                text = status_text(job, event.status, place=event.place)
                await self._edit(shown, job, event.status, text)
            return
        await self._show_running(event, shown)

    async def settle(self, owed: Owed) -> None:
        """The outcome: the status message's last word, carrying the result when there is
        one (one message per render); a post of its own where there is no status message."""
        job = owed.job
        self.shown.pop(job.id, None)
        ref = StatusRef.parse(job.status_ref)  # the row, read for this delivery
        result = job.status == JobStatus.DONE and bool(owed.files) and self.db is not None
        if result and ref is not None and "result" not in owed.done:
            posted = ref  # `ref` is rebound by final_edit below; the lambda keeps this one
            await owed.step("outcome", lambda retried: self._outcome(owed, posted, retried))
            return

        async def final_edit(retried: bool) -> None:
            nonlocal ref
            text = status_text(job, job.status, job.error)
            if ref is not None:
                await self._edit(Shown(ref), job, job.status, text)
            else:  # a claim whose request died before posting: the message, posted now
                ref = await self._post_abandoned(job, job.status, text, wait=True)

        await owed.step("status", final_edit)
        if result:
            await owed.step("result", lambda retried: self._post(owed, None, retried))

    async def _outcome(self, owed: Owed, ref: StatusRef, retried: bool) -> None:
        """The status message edited into the result. An edit needs no look-up after a
        crash (made twice, it ends the same); a message deleted meanwhile gets a post."""
        job, db = owed.job, self.db
        assert db is not None
        line = status_text(job, job.status)
        try:
            if not await post_result(self.client, db, job, owed.files, ref, status_line=line):
                await self._edit(Shown(ref), job, job.status, line)  # its story is gone
        except discord.NotFound as error:
            if error.code != UNKNOWN_MESSAGE:
                raise _platform_error(error) from error
            log.warning("job %s: its status message %s is gone", job.id, ref.encode())
            await self._post(owed, ref, retried)
        except (discord.HTTPException, discord.RateLimited) as error:
            raise _platform_error(error) from error

    async def _post(self, owed: Owed, gone: StatusRef | None, retried: bool) -> None:
        """The result as a post of its own (in the status message's channel, if it had one)."""
        job, db = owed.job, self.db
        assert db is not None
        ref = gone or StatusRef.parse(job.status_ref)
        if retried and await self._posted(job, ref):
            return  # it got there before the crash
        try:
            await post_result(self.client, db, job, owed.files, ref)
        except (discord.HTTPException, discord.RateLimited) as error:
            raise _platform_error(error) from error

    async def _posted(self, job: RenderJob, ref: StatusRef | None) -> bool:
        """Whether the bot's result post for this job is in its channel already."""
        channel_id = ref.channel_id if ref is not None else await self._thread_of(job)
        if channel_id is None:
            return False
        channel = self.client.get_partial_messageable(channel_id)
        marker = result_marker(job)
        me = self.client.user.id if self.client.user is not None else None
        try:
            async for message in channel.history(limit=HISTORY_SEARCH_LIMIT):
                status = ref is not None and message.id == ref.message_id  # names it too
                if message.author.id == me and marker in message.content and not status:
                    return True
        except discord.HTTPException as error:
            raise _platform_error(error) from error
        return False

    async def _post_abandoned(
        self, job: RenderJob, status: JobStatus, text: str, *, wait: bool
    ) -> StatusRef | None:
        """Post the status message of a job whose claim's request died before posting it
        (`status_refs.take_over`), showing `text`; None if there is none to post. A claim
        still within its lease is waited for (`Retry`) if `wait`, else left alone."""
        if self.db is None or status_refs.claimed_at(job.status_ref) is None:
            return None
        if not await status_refs.take_over_to_post(self.db, job.id, wait=wait):
            return None
        channel_id = await self._thread_of(job)
        if channel_id is None:
            raise Undeliverable("its story was deleted")
        channel = self.client.get_partial_messageable(channel_id)
        try:
            message = await channel.send(
                text, allowed_mentions=NO_PINGS, view=job_buttons(job, status)
            )
        except (discord.HTTPException, discord.RateLimited) as error:
            raise _platform_error(error) from error
        ref = StatusRef(channel_id, message.id, DEFAULT_UPLOAD_LIMIT)
        log.info("job %s: posted the status message its request died before posting", job.id)
        await status_refs.posted(self.db, job.id, ref.encode())
        return ref

    async def _thread_of(self, job: RenderJob) -> int | None:
        assert self.db is not None
        async with self.db.reading() as uow:
            story = await uow.stories.by_id(job.story_id)
        return None if story is None else int(story.thread.thread_id)

    async def _show_running(self, event: JobEvent, shown: Shown) -> None:
        if event.progress is not None:
            now = self.clock()
            if shown.edited_at is not None and now - shown.edited_at < self.edit_every_s:
                return  # the next report shows it; the final status always edits
            shown.edited_at = now
        shown.place = None
        text = status_text(event.job, event.status, progress=event.progress)
        preview = event.progress.preview if event.progress is not None else None
        new = preview if preview is not None and preview != shown.preview else None
        await self._edit(shown, event.job, event.status, text, new)
        if new is not None:
            shown.preview = new

    async def _edit(
        self,
        shown: Shown,
        job: RenderJob,
        status: JobStatus,
        text: str,
        preview: bytes | None = None,
    ) -> None:
        """Edit the status message (with a new preview image, or none once the job is over;
        otherwise its attachments stay); one that is gone (deleted by a moderator) is
        logged, and the result is still posted."""
        channel = self.client.get_partial_messageable(shown.ref.channel_id)
        message = channel.get_partial_message(shown.ref.message_id)
        view = job_buttons(job, status)
        try:
            if preview is not None:
                alt = f"Preview of {job.kind.value} job #{job.id} while it renders"
                image = discord.File(io.BytesIO(preview), PREVIEW_NAME, description=alt)
                await message.edit(
                    content=text, allowed_mentions=NO_PINGS, view=view, attachments=[image]
                )
            elif not status.active:  # the outcome shows no preview
                await message.edit(
                    content=text, allowed_mentions=NO_PINGS, view=view, attachments=[]
                )
            else:  # its attachments (the last preview) stay
                await message.edit(content=text, allowed_mentions=NO_PINGS, view=view)
        except discord.NotFound as error:
            if error.code != UNKNOWN_MESSAGE:
                raise _platform_error(error) from error
            log.warning("job %s: its status message %s is gone", job.id, shown.ref.encode())
        except (discord.HTTPException, discord.RateLimited) as error:
            raise _platform_error(error) from error
