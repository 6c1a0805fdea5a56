"""`/character …` and `/story cast … --reference PATH` in the console room.

The console reads pictures and character files from paths and writes what it shows (a
sheet, an exported file) into the output folder, printing where.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from pathlib import Path

from storyloom.bot import library_text
from storyloom.generation.export import write_bytes
from storyloom.story import library
from storyloom.story.errors import InvalidInput
from storyloom.story.escaping import escape_plain
from storyloom.story.library_ports import Library
from storyloom.story.model import Actor
from storyloom.story.paging import page_of
from storyloom.story.service import Deps
from storyloom.story.wording import cast_args, look_state

REFERENCE = "--reference"
PAGE_ROOM = 2000  # a console page holds what a Discord message would: the same pages


async def read_file(path_text: str, what: str) -> bytes:
    """A file the member named, or one sentence saying why it cannot be read."""
    path = Path(path_text.strip()).expanduser()
    try:
        return await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise InvalidInput(f"There is no {what} at {path_text.strip()!r}.") from None
    except OSError:
        raise InvalidInput(f"The {what} at {path_text.strip()!r} cannot be read.") from None


async def cast(
    deps: Deps, lib: Library, actor: Actor, text: str, say: Callable[[str], None]
) -> None:
    """`/story cast NAME: DESCRIPTION [--reference PATH]`, or `/story cast NAME` (library)."""
    text, flag, path = text.partition(REFERENCE)
    if flag and not path.strip():
        raise InvalidInput(f"Give the picture's path after {REFERENCE}.")
    picture = await read_file(path, "picture") if flag else None
    name, description = cast_args(text)
    result = await library.cast(deps, lib, actor, name, description, picture)
    look = f" ({look_state(result.character.lock_state)})" if result.entry is None else ""
    say(library_text.cast(result, escape_plain) + look)


async def character_command(
    deps: Deps,
    lib: Library,
    actor: Actor,
    out_dir: Path,
    text: str,
    say: Callable[[str], None],
) -> None:
    """Run one `/character` subcommand and say its answer."""
    sub, _, rest = text.strip().partition(" ")
    rest = rest.strip()
    if sub == "save":
        say(library_text.saved(await library.save(deps, lib, actor, rest), escape_plain))
    elif sub == "list":
        entries = await library.listing(deps, lib, actor)
        if not entries:
            say(library_text.EMPTY)
            return
        if rest and not rest.isdigit():
            raise InvalidInput("Give a page number, e.g. /character list 2.")
        lines = library_text.listing_lines(entries, escape_plain)
        shown = page_of(lines, int(rest) if rest else 1, PAGE_ROOM)
        for line in shown.lines:
            say(line)
        say(f"page {shown.page} of {shown.pages} ({len(entries)} characters)")
    elif sub == "show":
        entry, sheet = await library.show(deps, lib, actor, rest)
        say(library_text.shown(entry, sheet is not None, escape_plain))
        if sheet is not None:
            path = out_dir / "characters" / f"{'-'.join(entry.name.split())}-sheet.png"
            await asyncio.to_thread(write_bytes, path, sheet)
            say(f"  {path}")
    elif sub == "delete":
        say(library_text.deleted(await library.delete(deps, lib, actor, rest), escape_plain))
    elif sub == "export":
        name, data = await library.export(deps, lib, actor, rest)
        path = out_dir / "characters" / name
        await asyncio.to_thread(write_bytes, path, data)
        say(f"exported to {path}")
    elif sub == "import":
        parts = shlex.split(rest) if rest else []
        if len(parts) != 1:
            raise InvalidInput("Give the character file's path: /character import FILE.")
        entry = await library.import_character(
            deps, lib, actor, await read_file(parts[0], "character file")
        )
        say(library_text.imported(entry, escape_plain))
    else:
        raise InvalidInput(f"usage: {library_text.USAGE}")
