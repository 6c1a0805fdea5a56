"""The Slack adapter: bolt listeners as methods of one class holding the service deps.

Every listener acks first (Slack wants an answer within 3 s) and then does its work in the
same task: bolt's async app answers the HTTP request as soon as `ack()` is called. Replies
go through the Web API with the bot token, escaped, never as broadcast mentions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from storyloom.bot.slack import blocks, library_commands
from storyloom.bot.slack.commands import HELP, MAX_TEXT, SUBCOMMANDS, Handler, Reply, by_id
from storyloom.bot.slack.library_commands import fetcher, shared_files
from storyloom.bot.slack.members import Members
from storyloom.bot.slack.notifier import SlackNotifier, SlackTracked
from storyloom.bot.slack.refs import StatusRef
from storyloom.bot.slack.requests import (
    Where,
    beat_form,
    button_press,
    mention,
    slash_command,
)
from storyloom.bot.slack.server_commands import SERVER_SUBCOMMANDS
from storyloom.jobs import status_refs
from storyloom.ops.trouble import trouble
from storyloom.story import service
from storyloom.story.errors import InvalidInput, StoryError
from storyloom.story.escaping import escape_slack
from storyloom.story.library_ports import Library
from storyloom.story.limits import MAX_TITLE_CHARS, clean_text
from storyloom.story.lookup import ChannelStories, channel_story
from storyloom.story.model import JobStatus
from storyloom.story.moderation import Refused
from storyloom.story.paging import clip

log = logging.getLogger(__name__)
Answer = Callable[[str], Awaitable[None]]
# a waiting job's place in the queue (1 starts next), None once it is no longer waiting
QueuePlace = Callable[[int], Awaitable[int | None]]
# Slack's answers when the bot may not post in a channel: the member can fix that
CANNOT_POST = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action"})
NOT_IN_CHANNEL = (
    "I can't post in this channel. Invite me with `/invite @storyloom` (or pick a channel "
    "I'm in), then try again."
)
_BARE_MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")
_BOT_PREFIX = re.compile(r"^\s*<@[A-Z0-9]+>\s*")
# a button's action → the subcommand it runs (the others run the subcommand of their name:
# clip, cancel, redraw)
BUTTON_SUBCOMMANDS = {"again": "render", "reroll": "look", "lock": "look"}


class SlackStoryAdapter:
    """Turns Slack requests into story use cases and their results into Slack messages."""

    def __init__(
        self,
        deps: service.Deps,
        stories: ChannelStories,
        notifier: SlackNotifier,
        members: Members,
        queue_place: QueuePlace | None = None,
        subcommands: Mapping[str, Handler] = SUBCOMMANDS,
        library: Library | None = None,
    ) -> None:
        self.deps = deps
        # what `/story SUB` offers: SUBCOMMANDS and more (share links); mentions offer
        # SUBCOMMANDS only
        self.stories = stories
        self.notifier = notifier
        self.members = members
        self.queue_place = queue_place  # shown on a new job's status message
        self.subcommands = subcommands
        self.library = library  # the character library (None: no /character, cast as before)

    def register(self, app: AsyncApp) -> None:
        """Attach the listeners to a bolt app."""
        app.command("/story")(self.on_command)
        app.command("/character")(self.on_character_command)
        app.event("app_mention")(self.on_mention)
        app.action(re.compile(r"^story_"))(self.on_button)
        app.view(blocks.ADD_BEAT_VIEW)(self.on_add_beat_view)

    # -- listeners -------------------------------------------------------------------
    async def on_command(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        """`/story …` in a channel: answered privately to the member who typed it."""
        await ack()
        command = slash_command(body)
        where = command.where

        async def answer(text: str) -> None:
            try:
                await client.chat_postEphemeral(
                    channel=where.channel_id, user=where.user_id, text=text
                )
            except SlackApiError as error:
                # a channel the bot is not in (or cannot see) refuses even a private answer;
                # the command's response_url still reaches the member
                if error.response.get("error") not in CANNOT_POST:
                    raise
                await respond(text=text, response_type="ephemeral", replace_original=False)

        try:
            where = await self.identify(client, where)
            if command.sub == "new":
                await self.new_story(client, where, command.args, answer)
                return
            if command.sub in SERVER_SUBCOMMANDS:  # the workspace's, no story needed
                use = SERVER_SUBCOMMANDS[command.sub]
                done = await use(self.deps, where.actor(""), command.args, command.key)
                await answer(done.text)
                return
            if command.sub not in self.subcommands:
                await answer(HELP)
                return
            thread = await channel_story(
                self.stories, where.team_id, where.channel_id, command.story_id
            )
            actor = where.actor(thread.thread_id)
            if command.sub == "cast" and self.library is not None:  # a library character too
                reply = await library_commands.cast(
                    self.deps, self.library, actor, command.args, (),
                    fetcher(client.token, client.base_url),
                )  # fmt: skip
            else:
                reply = await self.subcommands[command.sub](
                    self.deps, actor, command.args, command.key
                )
            await self.deliver(client, where, thread.thread_id, reply, answer)
        except Exception as error:  # every failure gets a short answer
            await self.report(error, where, f"/story {command.sub}", answer)

    async def on_character_command(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        """`/character …` in a channel: the workspace's library (`save` takes the channel's
        latest open story's character), answered privately; a sheet or file is shared in
        the channel."""
        await ack()
        command = slash_command({**body, "text": f"character {body.get('text', '')}"})
        where = command.where

        async def answer(text: str) -> None:
            await client.chat_postEphemeral(channel=where.channel_id, user=where.user_id, text=text)

        try:
            if self.library is None:
                raise InvalidInput("The character library is not set up on this bot.")
            where = await self.identify(client, where)
            thread_ts = ""
            if command.args.split(" ", 1)[0] == "save":
                thread = await channel_story(
                    self.stories, where.team_id, where.channel_id, command.story_id
                )
                thread_ts = thread.thread_id
            reply = await library_commands.character(
                self.deps, self.library, where.actor(thread_ts), command.args, None,
                fetcher(client.token, client.base_url),
            )  # fmt: skip
            if reply.file is not None:
                name, content = reply.file
                await client.files_upload_v2(
                    channel=where.channel_id, filename=name, content=content
                )
            await answer(clip(reply.text, MAX_TEXT))
        except Exception as error:  # every failure gets a short answer
            await self.report(error, where, f"/character {command.args[:20]}", answer)

    async def on_mention(
        self, ack: AsyncAck, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """`@storyloom add …` in a story thread: answered in the thread."""
        await ack()
        said = mention(event, body["team_id"], body.get("event_id"))
        where = said.where
        thread_ts = where.thread_ts or event["ts"]

        async def answer(text: str) -> None:
            await client.chat_postMessage(channel=where.channel_id, thread_ts=thread_ts, text=text)

        try:
            if said.sub not in SUBCOMMANDS and not (self.library and said.sub == "character"):
                await answer(HELP)
                return
            if said.args and "<@" in str(event.get("text", "")):
                named = await self.named(client, body["team_id"], event)
                said = mention(named, body["team_id"], body.get("event_id"))
            if where.thread_ts is None:
                raise InvalidInput(
                    "Mention me inside a story's thread, or use /story in the channel."
                )
            where = await self.identify(client, where)
            actor = where.actor(thread_ts)
            if self.library is not None and said.sub in ("cast", "character"):
                fetch = fetcher(client.token, client.base_url)
                files = shared_files(event)
                if said.sub == "cast":
                    reply = await library_commands.cast(
                        self.deps, self.library, actor, said.args, files, fetch
                    )
                else:
                    reply = await library_commands.character(
                        self.deps, self.library, actor, said.args, files, fetch
                    )
            else:
                reply = await SUBCOMMANDS[said.sub](self.deps, actor, said.args, said.key)
            await self.deliver(client, where, thread_ts, reply, answer, in_thread=True)
        except Refused as refused:  # the member's own text: told privately, not the thread
            await client.chat_postEphemeral(
                channel=where.channel_id,
                user=where.user_id,
                thread_ts=thread_ts,
                text=f"✗ {escape_slack(refused.message)}",
            )
        except Exception as error:  # every failure gets a short answer
            await self.report(error, where, f"@storyloom {said.sub}", answer)

    async def on_button(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """A button (or menu) on an anchor, status, result or sheet message."""
        await ack()
        press = button_press(body)
        where = press.where

        async def answer(text: str) -> None:
            await client.chat_postEphemeral(
                channel=where.channel_id, user=where.user_id, thread_ts=press.thread_ts, text=text
            )

        try:
            if press.action == "add":
                view = blocks.add_beat_modal(where.channel_id, press.thread_ts)
                await client.views_open(trigger_id=press.trigger_id, view=view)
                return
            sub = BUTTON_SUBCOMMANDS.get(press.action, press.action)
            if sub not in SUBCOMMANDS:
                raise InvalidInput("That button is from an older storyloom; it does nothing now.")
            args = press.arg.replace("-", " ").strip()
            if press.action in ("reroll", "lock"):
                args = f"{press.arg} {press.action}"
            where = await self.identify(client, where)
            actor = where.actor(press.thread_ts)
            reply = await by_id(self.deps, actor, press.action, press.arg, press.key)
            if reply is None:
                reply = await SUBCOMMANDS[sub](self.deps, actor, args, press.key)
            await self.deliver(client, where, press.thread_ts, reply, answer)
        except Exception as error:  # every failure gets a short answer
            await self.report(error, where, f"button {press.action}", answer)

    async def on_add_beat_view(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """The add-a-beat modal was submitted: the beat goes to the story named in it."""
        await ack()
        form = beat_form(body)
        where = form.where

        async def answer(message: str) -> None:
            await client.chat_postEphemeral(
                channel=where.channel_id, user=where.user_id, thread_ts=form.thread_ts, text=message
            )

        try:
            where = await self.identify(client, where)
            beat = await service.add_beat(self.deps, where.actor(form.thread_ts), form.text)
            await client.chat_postMessage(
                channel=where.channel_id,
                thread_ts=form.thread_ts,
                text=f"beat {beat.position} by {escape_slack(beat.author_name)}: "
                f"{escape_slack(beat.text)}",
            )
        except Exception as error:  # every failure gets a short answer
            await self.report(error, where, "add-beat modal", answer)

    # -- helpers ---------------------------------------------------------------------
    async def named(
        self, client: AsyncWebClient, team: str, event: dict[str, Any]
    ) -> dict[str, Any]:
        """The event with each bare `<@U…>` given its display name (`<@U…|name>`): beats
        show members by name, not by id."""
        text = str(event.get("text", ""))
        prefix = _BOT_PREFIX.match(text)  # the mention of the bot itself stays as it came
        head, rest = (text[: prefix.end()], text[prefix.end() :]) if prefix else ("", text)
        names = {}
        for user in set(_BARE_MENTION.findall(rest)):
            names[user] = (await self.members.get(client, team, user)).name
        rest = _BARE_MENTION.sub(lambda m: f"<@{m[1]}|{names[m[1]]}>", rest)
        return {**event, "text": head + rest}

    async def identify(self, client: AsyncWebClient, where: Where) -> Where:
        """The request with its sender's display name and moderator role (`users.info`)."""
        member = await self.members.get(client, where.team_id, where.user_id)
        return where.known_as(member.name, member.is_moderator)

    async def new_story(
        self, client: AsyncWebClient, where: Where, title: str, answer: Answer
    ) -> None:
        """Post the anchor message, then open the story in its thread; no story, no anchor."""
        clean_text(title, "title", MAX_TITLE_CHARS)  # a bad title posts nothing at all
        posted = await client.chat_postMessage(channel=where.channel_id, text="📖 …")
        ts = str(posted["ts"])
        try:
            story = await service.new_story(self.deps, where.actor(ts), title)
        except StoryError:
            await client.chat_delete(channel=where.channel_id, ts=ts)
            raise
        text, anchor = blocks.anchor(story.title, ts, where.user_name)
        await client.chat_update(channel=where.channel_id, ts=ts, text=text, blocks=anchor)
        await answer(f"story #{story.id} *{escape_slack(story.title)}* started ({story.style})")

    async def deliver(
        self,
        client: AsyncWebClient,
        where: Where,
        thread_ts: str,
        reply: Reply,
        answer: Answer,
        *,
        in_thread: bool = False,
    ) -> None:
        """Send a subcommand's reply; a job also gets its status message in the thread: one,
        posted by the request that claims it first (a repeated request, a redelivered event
        or a double click returns the same job, whose message is claimed already)."""
        if reply.job is not None and await status_refs.claim(self.deps.db, reply.job.id):
            job = reply.job
            place = None if self.queue_place is None else await self.queue_place(job.id)
            text, status = blocks.status(job, JobStatus.QUEUED, thread_ts, place=place)
            posted = await client.chat_postMessage(
                channel=where.channel_id, thread_ts=thread_ts, text=text, blocks=status
            )
            ref = StatusRef(where.team_id, where.channel_id, thread_ts, str(posted["ts"]))
            overview = await service.status(self.deps, where.actor(thread_ts))
            self.notifier.track(
                job.id, SlackTracked(ref, overview.story.title, reply.character, place)
            )
            # on the row, so the message is still edited after a restart (or by another
            # bot process sharing the database); a job that ended meanwhile has its final
            # edit owed again, so the message ends in its outcome
            await status_refs.remember(self.deps.db, job.id, ref.encode())
        if reply.file is not None:
            name, content = reply.file
            await client.files_upload_v2(
                channel=where.channel_id, thread_ts=thread_ts, filename=name, content=content
            )
        if reply.post is not None:  # the story's own content, for everyone in its thread
            await client.chat_postMessage(
                channel=where.channel_id, thread_ts=thread_ts, text=clip(reply.post, MAX_TEXT)
            )
            if in_thread:
                return  # an answer in the thread would say it twice
        await answer(clip(reply.text, MAX_TEXT))

    async def report(self, error: Exception, where: Where, what: str, answer: Answer) -> None:
        """The one error reporter: domain errors answered as they are, others logged."""
        if isinstance(error, StoryError):
            await answer(clip(f"✗ {escape_slack(error.message)}", MAX_TEXT))
            return
        if isinstance(error, SlackApiError) and error.response.get("error") in CANNOT_POST:
            await answer(f"✗ {NOT_IN_CHANNEL}")
            return
        context = (
            f"member {where.user_id}",
            f"team {where.team_id}",
            f"channel {where.channel_id}",
        )
        await answer(f"✗ {trouble(log, error, what, *context)}")
