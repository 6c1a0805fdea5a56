"""The character library on Slack: `/character …` in a channel, `@storyloom character …` and
`@storyloom cast NAME DESCRIPTION` with a shared picture in a story thread.

Slash commands carry no files, so pictures and character files come with a mention: the
files shared in that message (`files` of the event). Each is fetched from Slack with the
bot token (the `files:read` scope), only from Slack's own file host, and only when its
declared size fits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import aiohttp

from storyloom.bot import library_text
from storyloom.bot.slack.commands import MAX_TEXT, Reply
from storyloom.generation.reference_image import MAX_UPLOAD_BYTES
from storyloom.story import character_file, library
from storyloom.story.errors import InvalidInput, LimitExceeded
from storyloom.story.escaping import escape_slack as esc
from storyloom.story.library_ports import Library
from storyloom.story.model import Actor
from storyloom.story.paging import page_of
from storyloom.story.service import Deps
from storyloom.story.wording import cast_args

FOOTER_ROOM = 80
SLACK_FILES = "https://files.slack.com/"
NO_FILES_IN_COMMANDS = (
    "Slack commands carry no files: share the file in a story's thread with "
    "`@storyloom character import`."
)


@dataclass(frozen=True)
class SharedFile:
    """A file shared with a mention, as the event describes it."""

    name: str
    size: int
    url: str

    @classmethod
    def of(cls, raw: dict[str, Any]) -> SharedFile:
        url = raw.get("url_private_download") or raw.get("url_private") or ""
        return cls(str(raw.get("name", "")), int(raw.get("size", 0)), str(url))


def shared_files(event: dict[str, Any]) -> list[SharedFile]:
    """The files shared in the event's message."""
    return [SharedFile.of(raw) for raw in event.get("files") or [] if isinstance(raw, dict)]


Fetch = Callable[[SharedFile, int, str], Awaitable[bytes]]


def fetcher(token: str | None, api_base: str) -> Fetch:
    """Fetch a shared file with the bot token, from Slack's file host (or the Web API's
    own host, where a test serves it) only: the token goes nowhere else."""
    api = urlparse(api_base)
    allowed = (SLACK_FILES, f"{api.scheme}://{api.netloc}/")

    async def fetch(file: SharedFile, limit: int, what: str) -> bytes:
        if file.size > limit:
            raise LimitExceeded(
                f"The {what} is {file.size / 2**20:.1f} MiB; the limit is {limit / 2**20:.0f} MiB."
            )
        if not file.url.startswith(allowed):
            raise InvalidInput(f"The {what} is not a file shared on Slack.")
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(file.url, headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as got,
        ):
            if got.status != 200:
                raise InvalidInput(f"The {what} could not be fetched from Slack; share it again.")
            data = await got.content.read(limit + 1)
        if len(data) > limit:
            raise LimitExceeded(f"The {what} is over the limit of {limit / 2**20:.0f} MiB.")
        return data

    return fetch


async def cast(
    deps: Deps, lib: Library, actor: Actor, args: str, files: Sequence[SharedFile], fetch: Fetch
) -> Reply:
    """`cast NAME DESCRIPTION` with the first shared picture as its reference, or `cast NAME`
    (the library's character)."""
    name, description = cast_args(args)
    picture = await fetch(files[0], MAX_UPLOAD_BYTES, "reference picture") if files else None
    result = await library.cast(deps, lib, actor, name, description, picture)
    return Reply(library_text.cast(result, esc, lambda text: f"*{text}*"))


async def character(
    deps: Deps,
    lib: Library,
    actor: Actor,
    args: str,
    files: Sequence[SharedFile] | None,
    fetch: Fetch,
) -> Reply:
    """One `/character` subcommand (`files` None: a slash command, which carries none)."""
    sub, _, rest = args.strip().partition(" ")
    rest = rest.strip()
    if sub == "save":
        return Reply(library_text.saved(await library.save(deps, lib, actor, rest), esc))
    if sub == "list":
        entries = await library.listing(deps, lib, actor)
        if not entries:
            return Reply(library_text.EMPTY)
        if rest and not rest.isdigit():
            raise InvalidInput("Give a page number, e.g. `/character list 2`.")
        shown = page_of(library_text.listing_lines(entries, esc), int(rest or 1),
                        MAX_TEXT - FOOTER_ROOM)  # fmt: skip
        footer = f"page {shown.page}/{shown.pages} · {len(entries)} characters"
        if shown.page < shown.pages:
            footer += f" · next: `/character list {shown.page + 1}`"
        return Reply("\n".join([*shown.lines, footer]))
    if sub == "show":
        entry, sheet = await library.show(deps, lib, actor, rest)
        file = None if sheet is None else (f"{'-'.join(entry.name.split())}-sheet.png", sheet)
        return Reply(library_text.shown(entry, sheet is not None, esc), file=file)
    if sub == "delete":
        return Reply(library_text.deleted(await library.delete(deps, lib, actor, rest), esc))
    if sub == "export":
        name, data = await library.export(deps, lib, actor, rest)
        return Reply(f"`{name}`: import it with `@storyloom character import`.", file=(name, data))
    if sub == "import":
        if files is None:
            raise InvalidInput(NO_FILES_IN_COMMANDS)
        if len(files) != 1:
            raise InvalidInput("Share one .storyloom-character file with the mention.")
        data = await fetch(files[0], character_file.MAX_FILE_BYTES, "character file")
        return Reply(library_text.imported(
            await library.import_character(deps, lib, actor, data), esc
        ))  # fmt: skip
    raise InvalidInput(f"usage: {library_text.USAGE}")
