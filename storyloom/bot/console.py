"""`storyloom console`: a terminal chat room with the bots' commands (the embedded default).

Lines come from standard input (type them, or pipe a file in); replies go to standard
output. `/as NAME` switches the speaking member and `/thread NAME` the thread, so one
terminal can play a whole channel. Renders run on the in-process worker; when the input
ends, the console waits for queued jobs before it exits.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from storyloom.bot import console_library, console_share
from storyloom.config import Settings
from storyloom.story import library, server_admin, service
from storyloom.story.command_words import AUDIT_COUNT, COMMANDS, beat_range
from storyloom.story.errors import StoryError
from storyloom.story.escaping import escape_plain
from storyloom.story.library_ports import Library
from storyloom.story.model import Actor, JobStatus, RenderJob
from storyloom.story.server import describe
from storyloom.story.service import Deps
from storyloom.story.wording import cast_args, look_action, look_state

HELP = """commands (the same words as on Discord and Slack):
  /story new TITLE             start a story in this thread
  /story add TEXT              add a beat: [Name] tags, then ` # ` and a caption
  /story edit BEAT TEXT | remove BEAT | move BEAT TO | undo | list [PAGE]
  /story cast NAME: [DESCRIPTION] [--reference PICTURE]   no description: the library's NAME
  /story look NAME [lock|reroll]   render a character sheet, then lock it (or try another)
  /story redraw BEAT           draw the beat's panel again (later pages keep it)
  /story render [FIRST] [LAST] | clip [FIRST] [LAST]   a page (a clip) of those beats
  /story style NAME | status | cancel [JOB] | export | delete
  /story share | unshare [LINK] | links   a web link to the comic (STORYLOOM_OPS_PORT serves it)
  /story settings [SETTING] [VALUE]   this room's settings (the host moderates)
  /story audit [COUNT]         who did what, newest first (the host)
  /character save NAME | list [PAGE] | show NAME | delete NAME | export NAME | import FILE
                               this room's character library (sheets and files: output folder)
  /as NAME      speak as another member       /thread NAME   move to another thread
  /help  /quit
A line starting with #, and the rest of a line after two spaces and a #, is a comment
(a beat's caption follows ` # ` with one space)."""
# `/as Tom   # speak as another member`: the README's comments, pasted, are not input
INLINE_COMMENT = re.compile(r"\s{2,}#.*$")


class UsageError(Exception):
    """A command typed wrongly; the message is the usage line."""


def usage(name: str) -> str:
    """A command's usage line, from the table every front end shares."""
    return COMMANDS[name].usage()


def _int(text: str, usage: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(usage) from None


@dataclass
class Console:
    """The room: who is speaking, in which thread, and how commands reach the service."""

    deps: Deps
    write: Callable[[str], None]
    member: str = "host"
    thread: str = "main"
    # each waiting job's place in the fair line (jobs/admission.positions); None: not shown
    places: Callable[[], Awaitable[dict[int, int]]] | None = None
    public_base_url: str | None = None  # where share links point (settings)
    library: Library | None = None  # the character library (None: /character is off)
    out_dir: Path = Path("storyloom-out")  # where /character show and export write files

    @property
    def actor(self) -> Actor:
        # the host (whoever started the console) moderates the room; /as NAME does not
        host = self.member == "host"
        return Actor("console", "console", self.thread, self.member.casefold(), self.member, host)

    async def _place(self, job_id: int) -> str:
        """ ", 2 in line" for a waiting job, else nothing."""
        if self.places is None:
            return ""
        place = (await self.places()).get(job_id)
        return "" if place is None else f", {place} in line"

    async def handle(self, line: str) -> bool:
        """Run one line; False when the room should close."""
        line = INLINE_COMMENT.sub("", line).strip()
        if not line or line.startswith("#"):
            return True
        try:
            return await self._dispatch(line)
        except StoryError as error:
            self.write(f"✗ {error.message}")
        except UsageError as error:
            self.write(f"usage: {error}")
        return True

    async def _dispatch(self, line: str) -> bool:
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word == "/quit":
            return False
        if word == "/help":
            self.write(HELP)
        elif word == "/as":
            if not rest:
                raise UsageError("/as NAME")
            self.member = rest
            self.write(f"you are now {escape_plain(rest)}")
        elif word == "/thread":
            if not rest:
                raise UsageError("/thread NAME")
            self.thread = rest
            self.write(f"now in thread {escape_plain(rest)}")
        elif word == "/story":
            sub, _, text = rest.partition(" ")
            await self._story(sub, text.strip())
        elif word == "/character" and self.library is not None:
            await console_library.character_command(
                self.deps, self.library, self.actor, self.out_dir, rest, self.write
            )
        else:
            self.write("unknown command; type /help")
        return True

    async def _story(self, sub: str, text: str) -> None:
        d, a, say = self.deps, self.actor, self.write
        splits = ("move", "remove", "list", "redraw")
        args = shlex.split(text) if sub in splits else []
        if sub == "new":
            story = await service.new_story(d, a, text or "Untitled")
            say(f"new story “{escape_plain(story.title)}” (style {story.style})")
        elif sub == "add":
            beat = await service.add_beat(d, a, text)
            say(f"beat {beat.position} added by {escape_plain(beat.author_name)}")
        elif sub == "edit":
            number, _, new = text.partition(" ")
            beat = await service.edit_beat(d, a, _int(number, usage("edit")), new)
            say(f"beat {beat.position} edited")
        elif sub == "remove":
            beat = await service.remove_beat(d, a, _int(_first(args), usage("remove")))
            say(f"beat {beat.position} removed")
        elif sub == "move":
            if len(args) != 2:
                raise UsageError(usage("move"))
            to = _int(args[1], usage("move"))
            beat = await service.move_beat(d, a, _int(args[0], usage("move")), to)
            say(f"beat moved to {beat.position}")
        elif sub == "undo":
            beat = await service.undo_beat(d, a)
            say(f"beat {beat.position} removed")
        elif sub == "list":
            page = await service.list_beats(d, a, _int(args[0], usage("list")) if args else 1)
            for beat in page.beats:
                author = escape_plain(beat.author_name)
                say(f"{beat.position:>3}. {escape_plain(beat.text)} — {author}")
            say(f"page {page.page} of {page.pages} ({page.total} beats)")
        elif sub == "cast" and self.library is not None:
            await console_library.cast(d, self.library, a, text, say)
        elif sub == "cast":
            name, description = cast_args(text)
            if not description:
                raise UsageError(usage("cast"))
            character = await service.cast_character(d, a, name, description)
            look = look_state(character.lock_state)
            say(f"{escape_plain(character.name)} is in the cast ({look})")
        elif sub == "look":
            name, action = look_action(text)  # `look NAME [lock|reroll]`, as on Slack
            use = service.lock_look if action == "lock" else service.reroll_look
            result = await use(d, a, name)
            state = look_state(result.character.lock_state)
            queued = f"; sheet job #{result.job.id} queued" if result.job else ""
            say(f"{escape_plain(result.character.name)}: {state}{queued}")
        elif sub == "redraw":
            job = await service.reroll_panel(d, a, _int(_first(args), usage("redraw")))
            say(f"redraw job #{job.id} queued{await self._place(job.id)}")
        elif sub == "style":
            story = await service.set_style(d, a, text)
            say(f"style is now {story.style}")
        elif sub in ("render", "clip"):
            use_job = service.render if sub == "render" else service.clip
            first, last = beat_range(sub, text)  # the same words on every front end
            job = await use_job(d, a, first, last)
            say(f"{sub} job #{job.id} queued{await self._place(job.id)}")
        elif sub == "status":
            overview = await service.status(d, a)
            say(f"“{escape_plain(overview.story.title)}”: {overview.beat_count} beats")
            for c in overview.characters:
                say(f"  {escape_plain(c.name)}: {look_state(c.lock_state)}")
            for job in overview.jobs:
                say(f"  job #{job.id} {job.kind} {job.status}{await self._place(job.id)}")
        elif sub == "cancel":
            job = await service.cancel(d, a, _int(text, usage("cancel")) if text else None)
            say(f"job #{job.id} {job.status}")
        elif sub == "export":
            exported = await service.export(d, a)
            say(exported.to_toml())
        elif sub == "delete":
            story = await service.delete_story(d, a)
            say(f"story “{escape_plain(story.title)}” deleted")
        elif sub in console_share.SUBCOMMANDS:
            await console_share.share_command(d, a, self.public_base_url, sub, text, say)
        elif sub == "settings":
            await self._settings(text)
        elif sub == "audit":
            count = _int(text, usage("audit")) if text else AUDIT_COUNT
            for entry in await server_admin.audit_log(d, a, count):
                say(escape_plain(entry.describe()))
        else:
            raise UsageError("/story " + "|".join(COMMANDS))

    async def _settings(self, text: str) -> None:
        if not text:
            shown = await server_admin.view_settings(self.deps, self.actor)
            for line in describe(shown, self.deps.default_style):
                self.write(escape_plain(line))
            return
        key, _, value = text.partition(" ")
        await server_admin.change_setting(self.deps, self.actor, key, value)
        self.write(f"{escape_plain(key)} set to {escape_plain(value.strip())}")


def _first(args: list[str]) -> str:
    return args[0] if args else ""


async def run_console(settings: Settings, stdin: TextIO, stdout: TextIO) -> int:
    """Serve the room until /quit or the end of input, then finish the queued jobs."""
    from storyloom.bot.library_setup import character_library
    from storyloom.bot.wiring import story_deps
    from storyloom.jobs.events import JobEvent
    from storyloom.jobs.runtime import job_runtime
    from storyloom.ops.server import ops_server
    from storyloom.storage import open_database, upgrade_database

    def write(text: str) -> None:
        stdout.write(text + "\n")
        stdout.flush()

    async def notify(event: JobEvent) -> None:
        job: RenderJob = event.job
        if event.status == JobStatus.DONE:
            write(f"job #{job.id} {job.kind} done:")
            for path in event.files:
                write(f"  {path}")
        elif event.status == JobStatus.FAILED:
            write(f"job #{job.id} failed: {event.error}")
        elif event.progress is not None:
            write(f"job #{job.id} {event.progress.describe()}")
        elif event.status == JobStatus.RUNNING:
            # places are shown when asked (status); a cancel, by the command that made it
            write(f"job #{job.id} {event.status}")

    out_dir = Path(settings.output_dir).resolve()
    await upgrade_database(settings.database_url)
    async with (
        open_database(settings.database_url) as db,
        job_runtime(settings, db, notify) as jobs,
        ops_server(settings, "console"),  # the reader of shared stories, when a port is set
    ):
        lib = character_library(settings, db)
        forget = library.forgetting(db, lib, jobs.forget_files())
        deps = story_deps(settings, db, jobs, forget_files=forget)
        console = Console(
            deps, write, places=jobs.places, public_base_url=settings.public_base_url,
            library=lib, out_dir=out_dir,
        )  # fmt: skip
        write(f"storyloom console — outputs go to {out_dir}; type /help")
        read: Callable[[], Awaitable[str]] = lambda: asyncio.to_thread(stdin.readline)  # noqa: E731
        while line := await read():
            if not await console.handle(line):
                break
        await jobs.drain()
    return 0
