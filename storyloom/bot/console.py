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

from storyloom.bot import console_share
from storyloom.config import Settings
from storyloom.story import server_admin, service
from storyloom.story.errors import StoryError
from storyloom.story.escaping import escape_plain
from storyloom.story.model import Actor, JobStatus, RenderJob
from storyloom.story.server import describe
from storyloom.story.service import Deps
from storyloom.story.wording import cast_args, look_action, look_state

HELP = """commands:
  /story new TITLE             start a story in this thread
  /story add TEXT              add a beat: [Name] tags, then ` # ` and a caption
  /story edit N TEXT | remove N | move N M | undo | list [PAGE]
  /story cast NAME: DESCRIPTION
  /story look NAME [lock|reroll]   render a character sheet, then lock it (or try another)
  /story redraw N              draw beat N's panel again (later pages keep it)
  /story style NAME | render [A-B] | clip [A-B] | status | cancel [JOB] | export | delete
  /story share | unshare [LINK] | links   a web link to the comic (STORYLOOM_OPS_PORT serves it)
  /story settings [KEY VALUE]  this room's settings (the host moderates)
  /story audit [N]             who did what, newest first (the host)
  /as NAME      speak as another member       /thread NAME   move to another thread
  /help  /quit
A line starting with #, and the rest of a line after two spaces and a #, is a comment
(a beat's caption follows ` # ` with one space)."""
# `/as Tom   # speak as another member`: the README's comments, pasted, are not input
INLINE_COMMENT = re.compile(r"\s{2,}#.*$")


class UsageError(Exception):
    """A command typed wrongly; the message is the usage line."""


def _int(text: str, usage: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(usage) from None


def _range(args: list[str], usage: str) -> tuple[int | None, int | None]:
    if not args:
        return None, None
    first, _, last = args[0].partition("-")
    return _int(first, usage), _int(last or first, usage)


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
        else:
            self.write("unknown command; type /help")
        return True

    async def _story(self, sub: str, text: str) -> None:
        d, a, say = self.deps, self.actor, self.write
        splits = ("move", "remove", "render", "clip", "list", "redraw")
        args = shlex.split(text) if sub in splits else []
        if sub == "new":
            story = await service.new_story(d, a, text or "Untitled")
            say(f"new story “{escape_plain(story.title)}” (style {story.style})")
        elif sub == "add":
            beat = await service.add_beat(d, a, text)
            say(f"beat {beat.position} added by {escape_plain(beat.author_name)}")
        elif sub == "edit":
            number, _, new = text.partition(" ")
            beat = await service.edit_beat(d, a, _int(number, "/story edit N TEXT"), new)
            say(f"beat {beat.position} edited")
        elif sub == "remove":
            beat = await service.remove_beat(d, a, _int(_first(args), "/story remove N"))
            say(f"beat {beat.position} removed")
        elif sub == "move":
            if len(args) != 2:
                raise UsageError("/story move N M")
            usage = "/story move N M"
            beat = await service.move_beat(d, a, _int(args[0], usage), _int(args[1], usage))
            say(f"beat moved to {beat.position}")
        elif sub == "undo":
            beat = await service.undo_beat(d, a)
            say(f"beat {beat.position} removed")
        elif sub == "list":
            page = await service.list_beats(
                d, a, _int(args[0], "/story list [PAGE]") if args else 1
            )
            for beat in page.beats:
                author = escape_plain(beat.author_name)
                say(f"{beat.position:>3}. {escape_plain(beat.text)} — {author}")
            say(f"page {page.page} of {page.pages} ({page.total} beats)")
        elif sub == "cast":
            name, description = cast_args(text)
            if not description:
                raise UsageError("/story cast NAME: DESCRIPTION")
            character = await service.cast_character(d, a, name, description)
            look = look_state(character.lock_state)
            say(f"{escape_plain(character.name)} is in the cast ({look})")
        elif sub in ("look", "reroll"):
            name, action = look_action(text)  # `look NAME [lock|reroll]`, as on Slack
            if sub == "reroll":
                action = "reroll"
            use = service.lock_look if action == "lock" else service.reroll_look
            result = await use(d, a, name)
            state = look_state(result.character.lock_state)
            queued = f"; sheet job #{result.job.id} queued" if result.job else ""
            say(f"{escape_plain(result.character.name)}: {state}{queued}")
        elif sub == "redraw":
            job = await service.reroll_panel(d, a, _int(_first(args), "/story redraw N"))
            say(f"redraw job #{job.id} queued{await self._place(job.id)}")
        elif sub == "style":
            story = await service.set_style(d, a, text)
            say(f"style is now {story.style}")
        elif sub in ("render", "clip"):
            use_job = service.render if sub == "render" else service.clip
            first, last = _range(args, f"/story {sub} [A-B]")
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
            job = await service.cancel(d, a, _int(text, "/story cancel [JOB]") if text else None)
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
            count = _int(text, "/story audit [N]") if text else 20
            for entry in await server_admin.audit_log(d, a, count):
                say(escape_plain(entry.describe()))
        else:
            raise UsageError(
                "/story new|add|edit|remove|move|undo|list|cast|look|reroll|redraw|"
                "style|render|clip|status|cancel|export|delete|share|unshare|links|"
                "settings|audit"
            )

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
        deps = story_deps(settings, db, jobs)
        console = Console(deps, write, places=jobs.places, public_base_url=settings.public_base_url)
        write(f"storyloom console — outputs go to {out_dir}; type /help")
        read: Callable[[], Awaitable[str]] = lambda: asyncio.to_thread(stdin.readline)  # noqa: E731
        while line := await read():
            if not await console.handle(line):
                break
        await jobs.drain()
    return 0
