"""/character save|list|show|delete|export|import: the server's character library on Discord.

A group of its own (loaded after the /story cog); answers are the member's own (private),
like every other answer: a sheet or a file comes attached to that answer. Pictures and
files are read from Discord's CDN only after their declared size fits.
"""

from __future__ import annotations

import io
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from storyloom.bot import library_text
from storyloom.bot.discord.bot import MAX_CONTENT, StoryBot, reply
from storyloom.bot.discord.choices import MAX_CHOICES, cast_names
from storyloom.bot.discord.context import NO_PINGS, actor_of, defer, quote
from storyloom.bot.discord.status import DEFAULT_UPLOAD_LIMIT
from storyloom.generation.reference_image import MAX_UPLOAD_BYTES
from storyloom.story import character_file, library
from storyloom.story.errors import InvalidInput, LimitExceeded
from storyloom.story.library_ports import Library
from storyloom.story.paging import page_of

Name = app_commands.Range[str, 1, 32]
FOOTER_ROOM = 80


def _bot(interaction: discord.Interaction[Any]) -> StoryBot:
    client = interaction.client
    assert isinstance(client, StoryBot)
    return client


def _library(interaction: discord.Interaction[Any]) -> Library:
    lib = _bot(interaction).library
    if lib is None:
        raise InvalidInput("The character library is not set up on this bot.")
    return lib


async def download(attachment: discord.Attachment, limit: int, what: str) -> bytes:
    """An attachment's bytes, refused by its declared size before it is fetched."""
    if attachment.size > limit:
        raise LimitExceeded(
            f"The {what} is {attachment.size / 2**20:.1f} MiB; the limit is "
            f"{limit / 2**20:.0f} MiB."
        )
    return await attachment.read()


async def _send_file(
    interaction: discord.Interaction[Any], text: str, name: str, data: bytes
) -> None:
    """The answer with a file, if the channel takes its size; else the answer says so."""
    limit = getattr(interaction, "filesize_limit", None) or DEFAULT_UPLOAD_LIMIT
    if len(data) > limit:
        over = f"The file is {len(data) / 2**20:.1f} MiB, over this channel's upload limit"
        await reply(interaction, f"{text}\n({over} of {limit / 2**20:.0f} MiB.)")
        return
    await interaction.followup.send(
        text[:MAX_CONTENT], file=discord.File(io.BytesIO(data), filename=name),
        ephemeral=True, allowed_mentions=NO_PINGS,
    )  # fmt: skip


async def library_names(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """The server library's names containing what was typed (none without a library)."""
    lib = _bot(interaction).library
    if lib is None:
        return []
    entries = await library.listing(_bot(interaction).deps, lib, actor_of(interaction))
    names = [e.name for e in entries if current.casefold() in e.name.casefold()]
    return [app_commands.Choice(name=n, value=n) for n in names[:MAX_CHOICES]]


async def cast_or_library_names(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """For /story cast: the story's cast, then the library's other names."""
    cast = await cast_names(interaction, current)
    known = {c.name.casefold() for c in cast}
    saved = [c for c in await library_names(interaction, current) if c.name.casefold() not in known]
    return [*cast, *saved][:MAX_CHOICES]


class CharacterGroup(app_commands.Group):
    """The /character commands."""

    def __init__(self) -> None:
        super().__init__(name="character", description="This server's character library")

    @app_commands.command(description="Save a character of this story in the server's library")
    @app_commands.describe(name="A character of this story's cast")
    @app_commands.autocomplete(name=cast_names)
    async def save(self, interaction: discord.Interaction[Any], name: Name) -> None:
        await defer(interaction)
        entry = await library.save(
            _bot(interaction).deps, _library(interaction), actor_of(interaction), name
        )
        await reply(interaction, library_text.saved(entry, quote))

    @app_commands.command(name="list", description="The server's saved characters")
    async def list_(
        self, interaction: discord.Interaction[Any], page: app_commands.Range[int, 1, 100] = 1
    ) -> None:
        await defer(interaction)
        entries = await library.listing(
            _bot(interaction).deps, _library(interaction), actor_of(interaction)
        )
        if not entries:
            await reply(interaction, library_text.EMPTY)
            return
        lines = library_text.listing_lines(entries, quote)
        shown = page_of(lines, page, MAX_CONTENT - FOOTER_ROOM)
        footer = f"page {shown.page}/{shown.pages} · {len(entries)} characters"
        if shown.page < shown.pages:
            footer += f" · next: `/character list page:{shown.page + 1}`"
        await reply(interaction, "\n".join([*shown.lines, footer]))

    @app_commands.command(description="A saved character and their sheet")
    @app_commands.autocomplete(name=library_names)
    async def show(self, interaction: discord.Interaction[Any], name: Name) -> None:
        await defer(interaction)
        entry, sheet = await library.show(
            _bot(interaction).deps, _library(interaction), actor_of(interaction), name
        )
        text = library_text.shown(entry, sheet is not None, quote)
        if sheet is None:
            await reply(interaction, text)
        else:
            stem = "-".join(entry.name.split())
            await _send_file(interaction, text, f"{stem}-sheet.png", sheet)

    @app_commands.command(description="Remove a saved character (who saved it, or a moderator)")
    @app_commands.autocomplete(name=library_names)
    async def delete(self, interaction: discord.Interaction[Any], name: Name) -> None:
        await defer(interaction)
        entry = await library.delete(
            _bot(interaction).deps, _library(interaction), actor_of(interaction), name
        )
        await reply(interaction, library_text.deleted(entry, quote))

    @app_commands.command(description="A saved character as a file for another server")
    @app_commands.autocomplete(name=library_names)
    async def export(self, interaction: discord.Interaction[Any], name: Name) -> None:
        await defer(interaction)
        file, data = await library.export(
            _bot(interaction).deps, _library(interaction), actor_of(interaction), name
        )
        # the file name is letters, digits and dashes (a character name): no markdown in it
        await _send_file(interaction, f"`{file}`: import it with /character import.", file, data)

    @app_commands.command(name="import", description="Add a .storyloom-character file")
    @app_commands.describe(file="A .storyloom-character file")
    async def import_(
        self, interaction: discord.Interaction[Any], file: discord.Attachment
    ) -> None:
        await defer(interaction)
        data = await download(file, character_file.MAX_FILE_BYTES, "character file")
        entry = await library.import_character(
            _bot(interaction).deps, _library(interaction), actor_of(interaction), data
        )
        await reply(interaction, library_text.imported(entry, quote))


async def reference_of(attachment: discord.Attachment | None) -> bytes | None:
    """A /story cast picture's bytes (None: no picture)."""
    if attachment is None:
        return None
    return await download(attachment, MAX_UPLOAD_BYTES, "reference picture")


async def setup(bot: commands.Bot) -> None:
    """Extension entry point: the /character group."""
    bot.tree.add_command(CharacterGroup())
