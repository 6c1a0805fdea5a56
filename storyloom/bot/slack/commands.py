"""`/story SUB …` and `@storyloom SUB …`: one subcommand → one service call → one reply.

The same table serves the channel's slash command and mentions in a story thread; the
listener decides which story thread the actor speaks in before calling it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from storyloom.story import service
from storyloom.story.command_words import beat_range
from storyloom.story.errors import InvalidInput
from storyloom.story.escaping import escape_slack as esc
from storyloom.story.model import Actor, Beat, JobKind, RenderJob
from storyloom.story.paging import page_of
from storyloom.story.wording import cast_args, look_action, look_state

HELP = (
    "*storyloom* — `/story new TITLE` starts a story (its thread is the story). In the "
    "channel: `/story [#ID] add|edit|remove|move|undo|list|cast|look|style|render|clip|"
    "redraw|status|cancel|export|delete|share|unshare|links …` (the latest open story, or "
    "story #ID). In the "
    "thread: `@storyloom add …`, `@storyloom render`, `@storyloom redraw 3`."
)


# A message's text: Slack takes up to 40,000 characters but a section block only 3,000;
# keeping every reply within a section's limit lets any of them be shown as blocks.
MAX_TEXT = 3000
FOOTER_ROOM = 80  # "page 12/30 · 300 beats · next: `/story list 13`" and a newline


@dataclass(frozen=True)
class Reply:
    """What a subcommand answers: a line, a job to track, a file to upload."""

    text: str
    job: RenderJob | None = None
    character: str | None = None  # a sheet job: whose look its buttons lock
    file: tuple[str, bytes] | None = None  # (name, content)
    post: str | None = None  # story content for everyone, posted into the story's thread


# (deps, actor, the subcommand's arguments, the request's idempotency key: a retried event or
# a double click queues one job)
Handler = Callable[[service.Deps, Actor, str, str | None], Awaitable[Reply]]


def beat_post(beat: Beat) -> str:
    """A new beat as the thread sees it: number, author, text."""
    return f"beat {beat.position} by {esc(beat.author_name)}: {esc(beat.text)}"


def _ints(args: str, most: int) -> list[int]:
    words = args.split()
    if len(words) > most or not all(w.isdigit() for w in words):
        raise InvalidInput(f"Expected up to {most} whole numbers, got {esc(args)!r}.")
    return [int(w) for w in words]


def _number_and_text(args: str) -> tuple[int, str]:
    first, _, rest = args.partition(" ")
    if not first.isdigit() or not rest.strip():
        raise InvalidInput("Give a beat number and the new text, e.g. `edit 3 [Mira] waves`.")
    return int(first), rest.strip()


async def _add(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    beat = await service.add_beat(deps, actor, args, request_key=key)
    return Reply(f"beat {beat.position} added", post=beat_post(beat))


async def _edit(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    position, text = _number_and_text(args)
    beat = await service.edit_beat(deps, actor, position, text)
    return Reply(f"beat {beat.position} edited")


async def _remove(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    (position,) = _ints(args, 1) or [0]
    beat = await service.remove_beat(deps, actor, position)
    return Reply(f"beat {beat.position} removed")


async def _move(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    numbers = _ints(args, 2)
    if len(numbers) != 2:
        raise InvalidInput("Give the beat and its new place, e.g. `move 5 2`.")
    beat = await service.move_beat(deps, actor, numbers[0], numbers[1])
    return Reply(f"beat moved to {beat.position}")


async def _undo(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    beat = await service.undo_beat(deps, actor)
    return Reply(f"beat {beat.position} removed")


async def _list(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    page = (_ints(args, 1) or [1])[0]
    beats = await service.story_beats(deps, actor)
    lines = [f"`{b.position:>3}` {esc(b.text)} — {esc(b.author_name)}" for b in beats]
    shown = page_of(lines, page, MAX_TEXT - FOOTER_ROOM)
    footer = f"page {shown.page}/{shown.pages} · {len(beats)} beats"
    if shown.page < shown.pages:
        footer += f" · next: `/story list {shown.page + 1}`"
    return Reply("\n".join([*shown.lines, footer]))


async def _cast(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    name, description = cast_args(args)
    character = await service.cast_character(deps, actor, name, description)
    return Reply(f"*{esc(character.name)}* is in the cast")


async def _look(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    name, action = look_action(args)
    use = service.reroll_look if action == "reroll" else service.lock_look
    result = await use(deps, actor, name, request_key=key)
    if result.job is None:
        return Reply(f"{esc(result.character.name)}'s look is locked")
    return Reply(f"character sheet for {esc(result.character.name)} queued", result.job, name)


async def _style(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    story = await service.set_style(deps, actor, args.strip())
    return Reply(f"style is now {esc(story.style)}")


async def _render(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    first, last = beat_range("render", args)  # the same words on every front end
    job = await service.render(deps, actor, first, last, request_key=key)
    return Reply(f"page job #{job.id} queued", job)


async def _clip(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    first, last = beat_range("clip", args)
    job = await service.clip(deps, actor, first, last, request_key=key)
    return Reply(f"clip job #{job.id} queued", job)


async def _redraw(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    numbers = _ints(args, 1)
    if not numbers:
        raise InvalidInput("Give the beat whose panel to draw again, e.g. `redraw 3`.")
    job = await service.reroll_panel(deps, actor, numbers[0], request_key=key)
    return Reply(f"panel {numbers[0]} redraw job #{job.id} queued", job)


async def _status(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    overview = await service.status(deps, actor)
    lines = [f"*{esc(overview.story.title)}* (#{overview.story.id}) · {overview.beat_count} beats"]
    lines += [f"{esc(c.name)}: {look_state(c.lock_state)}" for c in overview.characters]
    lines += [f"job #{j.id} {j.kind.value} {j.status.value}" for j in overview.jobs]
    return Reply("\n".join(lines))


async def _cancel(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    numbers = _ints(args, 1)
    job = await service.cancel(deps, actor, numbers[0] if numbers else None)
    return Reply(f"job #{job.id} cancelled")


async def _export(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    exported = await service.export(deps, actor)
    return Reply("story file:", file=("story.toml", exported.to_toml().encode()))


async def _delete(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    story = await service.delete_story(deps, actor)
    return Reply(f"story *{esc(story.title)}* deleted")


async def by_id(
    deps: service.Deps, actor: Actor, action: str, arg: str, key: str | None
) -> Reply | None:
    """A button that names what it was drawn for by id (`j12`: the beats job 12 drew;
    `b34`: beat 34), or None for one that carries a subcommand's arguments."""
    number = arg[1:]
    if not number.isdigit():
        return None
    if action in ("again", "clip") and arg[0] == "j":
        kind = JobKind.PAGE if action == "again" else JobKind.CLIP
        job = await service.render_again(deps, actor, int(number), kind, request_key=key)
        return Reply(f"{kind.value} job #{job.id} queued", job)
    if action == "redraw" and arg[0] == "b":
        job = await service.reroll_beat(deps, actor, int(number), request_key=key)
        return Reply(f"panel {job.first_position} redraw job #{job.id} queued", job)
    return None


SUBCOMMANDS: dict[str, Handler] = {
    "add": _add,
    "edit": _edit,
    "remove": _remove,
    "move": _move,
    "undo": _undo,
    "list": _list,
    "cast": _cast,
    "look": _look,
    "style": _style,
    "render": _render,
    "clip": _clip,
    "redraw": _redraw,
    "status": _status,
    "cancel": _cancel,
    "export": _export,
    "delete": _delete,
}
