"""The /story command group: one subcommand per use case of the story core.

Every handler defers first (Discord wants an answer within 3 s), calls one service
function with plain values, and answers with one short line; domain errors go to the
bot's global handler. Renders get a status message in the thread, sent with the bot
token and edited in place by the notifier.

Deferrals are private: after a public deferral Discord shows the first follow-up to
everyone, whatever its flags, so a refusal would be public (DESIGN §5). What belongs to
the story itself (a new beat, a new story) is posted into the thread with the bot token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Sequence
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from storyloom.bot import library_text
from storyloom.bot.discord.bot import MAX_CONTENT, StoryBot, reply, report
from storyloom.bot.discord.buttons import job_buttons
from storyloom.bot.discord.choices import beat_numbers, cast_names, open_jobs, style_names
from storyloom.bot.discord.context import NO_PINGS, actor_of, defer, quote
from storyloom.bot.discord.library_cog import cast_or_library_names, reference_of
from storyloom.bot.discord.status import DEFAULT_UPLOAD_LIMIT, StatusRef, status_text
from storyloom.jobs import status_refs
from storyloom.story import library, service
from storyloom.story.errors import InvalidInput
from storyloom.story.limits import MAX_BEATS
from storyloom.story.model import Actor, Beat, JobKind, JobStatus, RenderJob
from storyloom.story.paging import clip, page_of
from storyloom.story.wording import look_state

Text = app_commands.Range[str, 1, 500]
Name = app_commands.Range[str, 1, 32]
Position = app_commands.Range[int, 1, MAX_BEATS]
FOOTER_ROOM = 80  # "page 12/30 · 300 beats · next: `/story list page:13`" and a newline


def _bot(interaction: discord.Interaction[Any]) -> StoryBot:
    client = interaction.client
    assert isinstance(client, StoryBot)
    return client


def listing(beats: Sequence[Beat], page: int) -> str:
    """Page `page` of the beats, as long as one message may be: long beats fill pages
    sooner, and the footer says how to see the next."""
    lines = [f"`{b.position:>3}` {quote(b.text)} — {quote(b.author_name)}" for b in beats]
    shown = page_of(lines, page, MAX_CONTENT - FOOTER_ROOM)
    footer = f"page {shown.page}/{shown.pages} · {len(beats)} beats"
    if shown.page < shown.pages:
        footer += f" · next: `/story list page:{shown.page + 1}`"
    return "\n".join([*shown.lines, footer])


def beat_post(beat: Beat) -> str:
    """A new beat as the thread sees it: number, author, text."""
    return f"beat {beat.position} by {quote(beat.author_name)}: {quote(beat.text)}"


async def _public(interaction: discord.Interaction[Any], text: str) -> None:
    """Post story content into the thread for everyone (the bot token, not the interaction)."""
    channel = interaction.channel
    assert isinstance(channel, discord.abc.Messageable)
    await channel.send(clip(text, MAX_CONTENT), allowed_mentions=NO_PINGS)


async def _queued(interaction: discord.Interaction[Any], job: RenderJob) -> None:
    """Post the job's status message in the thread and hand it to the notifier: one per
    job, posted by the request that claims it first (a repeated request or a second press
    returns the same job, whose message is claimed already)."""
    db = _bot(interaction).deps.db
    if not await status_refs.claim(db, job.id):
        await reply(interaction, f"{job.kind.value} job #{job.id} queued")
        return
    channel = interaction.channel
    assert isinstance(channel, discord.abc.Messageable)
    notifier = _bot(interaction).notifier
    place = await notifier.place_of(job.id)
    message = await channel.send(
        status_text(job, JobStatus.QUEUED, place=place),
        allowed_mentions=NO_PINGS,
        view=job_buttons(job, JobStatus.QUEUED),
    )
    # the channel's upload limit, as Discord sent it with the interaction
    limit = getattr(interaction, "filesize_limit", None) or DEFAULT_UPLOAD_LIMIT
    ref = StatusRef(message.channel.id, message.id, limit)
    notifier.track(job, ref, place)
    # on the row too: a restarted bot (or the watcher of another process) still edits it;
    # a job that ended meanwhile has its final edit owed again, so the message ends in it
    await status_refs.remember(db, job.id, ref.encode())
    # the status message is for everyone; "queued" only for who asked
    await reply(interaction, f"{job.kind.value} job #{job.id} queued")


OLD_BUTTON = "That button is from an older storyloom; use /story render or /story redraw."


async def _again(deps: service.Deps, actor: Actor, kind: JobKind, arg: str, key: str) -> RenderJob:
    """ "Render again" / "make a clip": the beats job `j<id>` drew, or (`-`) the story."""
    if arg.startswith("j") and arg[1:].isdigit():
        return await service.render_again(deps, actor, int(arg[1:]), kind, request_key=key)
    if arg != "-":
        raise InvalidInput(OLD_BUTTON)
    use = service.render if kind == JobKind.PAGE else service.clip
    return await use(deps, actor, request_key=key)


def press_key(interaction: discord.Interaction[Any], action: str, arg: str) -> str:
    """The idempotency key of a request: a slash command is its interaction; a button is
    one member's press on one message, so a double click queues one job, not two."""
    if interaction.type != discord.InteractionType.component or interaction.message is None:
        return f"discord:{interaction.id}"
    where = f"{interaction.message.id}:{action}:{arg}:{interaction.user.id}"
    return "discord-press:" + hashlib.sha256(where.encode()).hexdigest()[:40]


async def press(interaction: discord.Interaction[Any], action: str, arg: str) -> None:
    """A button press: the same use cases as the slash commands, the same permissions."""
    await defer(interaction)
    deps, actor = _bot(interaction).deps, actor_of(interaction)
    key = press_key(interaction, action, arg)
    try:
        if action in ("again", "clip"):
            kind = JobKind.PAGE if action == "again" else JobKind.CLIP
            await _queued(interaction, await _again(deps, actor, kind, arg, key))
        elif action == "redraw":
            if arg.startswith("b") and arg[1:].isdigit():
                job = await service.reroll_beat(deps, actor, int(arg[1:]), request_key=key)
            elif arg.isdigit():  # a button from before beat ids: the position it shows
                job = await service.reroll_panel(deps, actor, int(arg), request_key=key)
            else:
                raise InvalidInput(OLD_BUTTON)
            await _queued(interaction, job)
        elif action == "cancel":
            job = await service.cancel(deps, actor, int(arg))
            await reply(interaction, f"job #{job.id} cancelled")
        else:
            use_look = service.lock_look if action == "lock" else service.reroll_look
            result = await use_look(deps, actor, arg, request_key=key)
            if result.job is not None:
                await _queued(interaction, result.job)
            else:
                await reply(interaction, f"{quote(result.character.name)}'s look is locked")
    except Exception as error:  # a button has no tree handler: report it the same way
        await report(interaction, error, f"button {action}:{arg}")


@app_commands.guild_only()  # a story lives in a server's thread
class StoryCog(commands.GroupCog, group_name="story", group_description="Build a comic together"):
    """/story …: the collaborative comic of this thread."""

    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot
        super().__init__()

    # -- the story ---------------------------------------------------------------------
    # `new TITLE` as in the console and on Slack: the style is `/story style NAME` after
    @app_commands.command(description="Start a story (in a channel: in a new thread)")
    @app_commands.describe(title="The story's title")
    async def new(
        self, interaction: discord.Interaction[Any], title: app_commands.Range[str, 1, 100]
    ) -> None:
        await defer(interaction)
        actor = actor_of(interaction)
        channel = interaction.channel
        if isinstance(channel, discord.TextChannel):
            # the title names the thread: a refused one must not reach Discord at all
            await service.moderate(self.bot.deps, actor, title=title)
            thread = await channel.create_thread(
                name=title[:100], type=discord.ChannelType.public_thread
            )
            actor = dataclasses.replace(actor, channel_id=str(channel.id), thread_id=str(thread.id))
            story = await service.new_story(self.bot.deps, actor, title)
            await thread.send(
                f"📖 **{quote(story.title)}** — add beats here with `/story add`",
                allowed_mentions=NO_PINGS,
            )
            await reply(interaction, f"new story in {thread.mention}")
            return
        story = await service.new_story(self.bot.deps, actor, title)
        await _public(
            interaction, f"📖 **{quote(story.title)}** — add beats here with `/story add`"
        )
        await reply(interaction, f"📖 new story **{quote(story.title)}** ({story.style})")

    @app_commands.command(description="Add a beat: [Name] tags, then ' # ' and a caption")
    @app_commands.describe(text='e.g. [Mira] opens the door # Mira: "Who is there?"')
    async def add(self, interaction: discord.Interaction[Any], text: Text) -> None:
        await defer(interaction)
        key = press_key(interaction, "add", "")  # a repeated interaction adds one beat
        beat = await service.add_beat(self.bot.deps, actor_of(interaction), text, key)
        await _public(interaction, beat_post(beat))
        await reply(interaction, f"beat {beat.position} added")

    @app_commands.command(description="Change a beat")
    @app_commands.describe(beat="The beat's number", text="Its new text")
    @app_commands.autocomplete(beat=beat_numbers)
    async def edit(self, interaction: discord.Interaction[Any], beat: Position, text: Text) -> None:
        await defer(interaction)
        changed = await service.edit_beat(self.bot.deps, actor_of(interaction), beat, text)
        await reply(interaction, f"beat {changed.position} edited")

    @app_commands.command(description="Remove a beat")
    @app_commands.describe(beat="The beat's number")
    @app_commands.autocomplete(beat=beat_numbers)
    async def remove(self, interaction: discord.Interaction[Any], beat: Position) -> None:
        await defer(interaction)
        removed = await service.remove_beat(self.bot.deps, actor_of(interaction), beat)
        await reply(interaction, f"beat {removed.position} removed")

    @app_commands.command(description="Move a beat to another place")
    @app_commands.describe(beat="The beat's number", to="Its new place")
    @app_commands.autocomplete(beat=beat_numbers, to=beat_numbers)
    async def move(
        self, interaction: discord.Interaction[Any], beat: Position, to: Position
    ) -> None:
        await defer(interaction)
        moved = await service.move_beat(self.bot.deps, actor_of(interaction), beat, to)
        await reply(interaction, f"beat moved to {moved.position}")

    @app_commands.command(description="Remove your last beat")
    async def undo(self, interaction: discord.Interaction[Any]) -> None:
        await defer(interaction)
        beat = await service.undo_beat(self.bot.deps, actor_of(interaction))
        await reply(interaction, f"beat {beat.position} removed")

    @app_commands.command(name="list", description="Show the story's beats")
    @app_commands.describe(page="Which page of the list")
    async def list_(
        self,
        interaction: discord.Interaction[Any],
        page: app_commands.Range[int, 1, MAX_BEATS] = 1,
    ) -> None:
        await defer(interaction)
        beats = await service.story_beats(self.bot.deps, actor_of(interaction))
        await reply(interaction, listing(beats, page))

    # -- characters and style ------------------------------------------------------------
    @app_commands.command(description="Add a character or change their description")
    @app_commands.describe(
        name="The name used in [Name] tags",
        description="How they look (none: the server library's character of that name)",
        picture="A reference picture of the character (PNG, JPEG or WebP)",
    )
    @app_commands.autocomplete(name=cast_or_library_names)
    async def cast(
        self,
        interaction: discord.Interaction[Any],
        name: Name,
        description: app_commands.Range[str, 1, 300] | None = None,
        picture: discord.Attachment | None = None,
    ) -> None:
        await defer(interaction)
        if self.bot.library is None:  # no library: a description, as before
            if not description:
                raise InvalidInput("Describe the character: /story cast NAME DESCRIPTION.")
            character = await service.cast_character(
                self.bot.deps, actor_of(interaction), name, description
            )
            await reply(interaction, f"**{quote(character.name)}** is in the cast")
            return
        result = await library.cast(
            self.bot.deps, self.bot.library, actor_of(interaction), name, description or "",
            await reference_of(picture),
        )  # fmt: skip
        await reply(interaction, library_text.cast(result, quote, lambda name: f"**{name}**"))

    @app_commands.command(description="Render a character sheet, lock it, or try another look")
    @app_commands.describe(name="A character of the cast", action="What to do with their look")
    @app_commands.autocomplete(name=cast_names)
    @app_commands.choices(
        action=[
            app_commands.Choice(name="sheet, then lock", value="lock"),
            app_commands.Choice(name="try another look", value="reroll"),
        ]
    )
    async def look(
        self, interaction: discord.Interaction[Any], name: Name, action: str = "lock"
    ) -> None:
        await press(interaction, action, name)

    @app_commands.command(description="Change the story's style (owner or moderators)")
    @app_commands.describe(name="A style preset")
    @app_commands.autocomplete(name=style_names)
    async def style(self, interaction: discord.Interaction[Any], name: str) -> None:
        await defer(interaction)
        story = await service.set_style(self.bot.deps, actor_of(interaction), name)
        await reply(interaction, f"style is now {story.style}")

    # -- renders -----------------------------------------------------------------------
    @app_commands.command(description="Render the story (or beats first..last) as a page")
    @app_commands.describe(first="The first beat (default: 1)", last="The last beat (default: all)")
    @app_commands.autocomplete(first=beat_numbers, last=beat_numbers)
    async def render(
        self,
        interaction: discord.Interaction[Any],
        first: Position | None = None,
        last: Position | None = None,
    ) -> None:
        await defer(interaction)
        actor = actor_of(interaction)
        key = press_key(interaction, "render", "")
        job = await service.render(self.bot.deps, actor, first, last, request_key=key)
        await _queued(interaction, job)

    @app_commands.command(description="Draw one panel again (a new seed); later pages keep it")
    @app_commands.describe(beat="The beat whose panel to draw again")
    @app_commands.autocomplete(beat=beat_numbers)
    async def redraw(self, interaction: discord.Interaction[Any], beat: Position) -> None:
        await defer(interaction)
        key = press_key(interaction, "redraw", str(beat))
        job = await service.reroll_panel(
            self.bot.deps, actor_of(interaction), beat, request_key=key
        )
        await _queued(interaction, job)

    @app_commands.command(description="Render the story (or beats first..last) as a clip")
    @app_commands.describe(first="The first beat (default: 1)", last="The last beat (default: all)")
    @app_commands.autocomplete(first=beat_numbers, last=beat_numbers)
    async def clip(
        self,
        interaction: discord.Interaction[Any],
        first: Position | None = None,
        last: Position | None = None,
    ) -> None:
        await defer(interaction)
        actor = actor_of(interaction)
        key = press_key(interaction, "clip", "")
        job = await service.clip(self.bot.deps, actor, first, last, request_key=key)
        await _queued(interaction, job)

    @app_commands.command(description="The story, its cast and its recent jobs")
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        await defer(interaction)
        overview = await service.status(self.bot.deps, actor_of(interaction))
        lines = [f"**{quote(overview.story.title)}** · {overview.beat_count} beats"]
        lines += [f"{quote(c.name)}: {look_state(c.lock_state)}" for c in overview.characters]
        lines += [f"job #{j.id} {j.kind.value} {j.status.value}" for j in overview.jobs]
        await reply(interaction, "\n".join(lines))

    @app_commands.command(description="Cancel a queued or running job (default: your newest)")
    @app_commands.describe(job="The job's number (default: your newest)")
    @app_commands.autocomplete(job=open_jobs)
    async def cancel(self, interaction: discord.Interaction[Any], job: int | None = None) -> None:
        await defer(interaction)
        cancelled = await service.cancel(self.bot.deps, actor_of(interaction), job)
        await reply(interaction, f"job #{cancelled.id} cancelled")

    @app_commands.command(description="The story as a story file")
    async def export(self, interaction: discord.Interaction[Any]) -> None:
        await defer(interaction)
        exported = await service.export(self.bot.deps, actor_of(interaction))
        data = io.BytesIO(exported.to_toml().encode())
        await interaction.followup.send(
            "story file:", file=discord.File(data, "story.toml"), allowed_mentions=NO_PINGS
        )

    @app_commands.command(description="Delete the story (owner or moderators)")
    async def delete(self, interaction: discord.Interaction[Any]) -> None:
        await defer(interaction)
        story = await service.delete_story(self.bot.deps, actor_of(interaction))
        await reply(interaction, f"story **{quote(story.title)}** deleted")


async def setup(bot: commands.Bot) -> None:
    """Extension entry point."""
    assert isinstance(bot, StoryBot)
    bot.on_press = press
    await bot.add_cog(StoryCog(bot))
