"""The use cases, one function each, called the same way by every chat adapter.

Plain values in (`Deps`, an `Actor`, the command's arguments), a model value or a
`StoryError` out. Input is checked before any transaction opens, so bad input changes
nothing; jobs are handed to the queue only after their record is committed.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NoReturn

from storyloom.story import rules
from storyloom.story.audit import AuditAction, NewAuditEntry
from storyloom.story.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LimitExceeded,
    NotFound,
    UnknownCharacter,
)
from storyloom.story.export import StoryExport
from storyloom.story.grammar import parse
from storyloom.story.limits import (
    MAX_BEAT_CHARS,
    MAX_BEATS,
    MAX_CHARACTERS,
    MAX_DESCRIPTION_CHARS,
    MAX_TITLE_CHARS,
    check_page_size,
    clean_name,
    clean_text,
)
from storyloom.story.model import (
    Actor,
    Beat,
    BeatPage,
    Character,
    DeletedStory,
    JobKind,
    JobStatus,
    LockState,
    LookResult,
    RenderJob,
    Story,
    StoryOverview,
)
from storyloom.story.moderation import Refused, WordList, default_words
from storyloom.story.ports import Database, JobQueue, NewBeat, UnitOfWork
from storyloom.story.render_limits import RenderLimits
from storyloom.story.server import EVERYONE, MODERATORS, ROLE, ServerSettings

RECENT_JOBS = 5


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def random_seed() -> int:
    """A fresh 31-bit seed (fits every backend's integer and every generator)."""
    return secrets.randbelow(2**31)


@dataclass(frozen=True)
class Deps:
    """What every use case needs; built once by the composition root."""

    db: Database
    queue: JobQueue
    styles: frozenset[str]
    default_style: str
    clock: Callable[[], datetime] = utc_now
    new_seed: Callable[[], int] = random_seed
    # Called inside the write transaction that records a new job, before the row is added:
    # raises a domain error to refuse it (per-member and per-workspace caps, jobs/fairness).
    admit_job: Callable[[UnitOfWork, Actor], Awaitable[None]] | None = None
    # Caps on one job (panels, clip length, size, steps), checked before it is recorded.
    render_limits: RenderLimits = field(default_factory=RenderLimits)
    # every server's settings until its moderators change them (story/server.py)
    server_defaults: ServerSettings = field(default_factory=ServerSettings)
    # the word list every server starts from; servers add their own terms
    words: WordList = field(default_factory=default_words)
    # removes a deleted story's files (pages, clips) and identity stores from this
    # process's disks, after the rows are gone (jobs/forget.py); None: nothing on disk here
    forget_files: Callable[[DeletedStory], Awaitable[None]] | None = None


async def server_settings(deps: Deps, uow: UnitOfWork, workspace_id: str) -> ServerSettings:
    """The settings in force for a server: its moderators' changes over the defaults."""
    return deps.server_defaults.with_changes(await uow.servers.changes(workspace_id))


_LISTS: dict[tuple[int, tuple[str, ...]], WordList] = {}


def word_list(deps: Deps, server: ServerSettings) -> WordList:
    """The default list plus the server's terms (compiled once per distinct list)."""
    key = (id(deps.words), server.words)
    if key not in _LISTS:
        if len(_LISTS) > 256:  # servers change their lists rarely; keep the cache small
            _LISTS.clear()
        _LISTS[key] = deps.words.plus(server.words)
    return _LISTS[key]


async def audit(deps: Deps, uow: UnitOfWork, actor: Actor, action: AuditAction,
                **about: int | str | None) -> None:  # fmt: skip
    """Record what the actor did in this transaction (`about`: story_id, job_id, target,
    detail)."""
    await uow.audit.add(
        NewAuditEntry(actor.workspace_id, deps.clock(), action, actor.member_id,
                      actor.display_name, **about)  # type: ignore[arg-type]
    )  # fmt: skip


async def moderate(deps: Deps, actor: Actor, **texts: str) -> ServerSettings:
    """Refuse texts that use the server's word list, before anything is stored or queued;
    the refusal is audited (without the text). Returns the server's settings."""
    async with deps.db.reading() as uow:
        server = await server_settings(deps, uow, actor.workspace_id)
    words = word_list(deps, server)
    for what, text in texts.items():
        if words.match(text) is not None:
            await _refused(deps, actor, what)
    return server


def _check_style(deps: Deps, style: str, server: ServerSettings) -> str:
    allowed = sorted(set(server.styles) & deps.styles if server.styles else deps.styles)
    if style not in allowed:
        raise InvalidInput(f"Unknown style {style!r}. Styles: {', '.join(allowed)}.")
    return style


async def new_story(deps: Deps, actor: Actor, title: str, style: str | None = None) -> Story:
    """Start the story of the actor's thread; the actor owns it."""
    title = clean_text(title, "title", MAX_TITLE_CHARS)
    server = await moderate(deps, actor, title=title)
    style = _check_style(deps, style or server.style_for(deps.default_style), server)
    async with deps.db.writing() as uow:
        if await uow.stories.get(actor.thread) is not None:
            raise Conflict("This thread already has a story. Start a new one in another thread.")
        story = await uow.stories.add(
            actor.thread,
            title,
            style,
            deps.new_seed(),
            actor.member_id,
            actor.display_name,
            deps.clock(),
        )
        await audit(deps, uow, actor, AuditAction.STORY_CREATED, story_id=story.id, detail=title)
        return story


async def _checked_beat(uow: UnitOfWork, story: Story, text: str) -> str:
    parsed = parse(text)
    rules.check_beat_size(parsed)
    if parsed.characters:
        rules.check_cast(parsed, await uow.characters.list(story.id))
    return text


async def add_beat(deps: Deps, actor: Actor, text: str, request_key: str | None = None) -> Beat:
    """Append a beat to the thread's story; anyone in the thread may. The same chat request
    again (`request_key`: a redelivered event) returns the beat it added."""
    text = clean_text(text, "beat", MAX_BEAT_CHARS)
    parsed = parse(text)
    rules.check_beat_size(parsed)
    if deps.words.match(text) is not None:  # the default list needs no database
        await _refused(deps, actor, "beat")

    def admit(
        story: Story | None, cast: Sequence[Character], count: int, server: dict[str, Any]
    ) -> Story:
        # Judged inside the appending transaction, against the story as it then stands.
        if story is None:
            raise NotFound(rules.NO_STORY)
        own = server.get("words") and word_list(deps, deps.server_defaults.with_changes(server))
        if own and own.match(text):  # the server's own terms, as they stand now
            raise Refused("beat")
        if parsed.characters:
            rules.check_cast(parsed, cast)
        if count >= MAX_BEATS:
            raise LimitExceeded(f"This story has reached {MAX_BEATS} beats; start a new one.")
        return story

    beat = NewBeat(
        actor.thread, actor.member_id, actor.display_name, text, deps.clock(), request_key
    )
    # storage records the beat's audit entry in the transaction that appends it
    try:
        return await deps.db.append_beat(beat, admit)
    except Refused:
        await _refused(deps, actor, "beat")


async def _refused(deps: Deps, actor: Actor, what: str) -> NoReturn:
    """Audit a refusal (without the text) and refuse."""
    async with deps.db.writing() as uow:
        await audit(deps, uow, actor, AuditAction.TEXT_REFUSED, target=what)
    raise Refused(what)


async def edit_beat(deps: Deps, actor: Actor, position: int, text: str) -> Beat:
    """Replace a beat's text (its author, the owner or a moderator)."""
    text = clean_text(text, "beat", MAX_BEAT_CHARS)
    rules.check_beat_size(parse(text))
    await moderate(deps, actor, beat=text)
    async with deps.db.writing() as uow:
        story = await rules.load_story(uow, actor, for_update=True)
        beat = await rules.load_beat(uow, story, position)
        rules.require_author(actor, story, beat, "edit")
        await _checked_beat(uow, story, text)
        edited_at = deps.clock()
        await uow.beats.set_text(beat.id, text, edited_at)
        await audit(deps, uow, actor, AuditAction.BEAT_EDITED, story_id=story.id,
                    target=f"beat {position}", detail=text)  # fmt: skip
        return replace(beat, text=text, edited_at=edited_at)


async def remove_beat(deps: Deps, actor: Actor, position: int) -> Beat:
    """Remove a beat (its author, the owner or a moderator); later beats move up one."""
    async with deps.db.writing() as uow:
        story = await rules.load_story(uow, actor, for_update=True)
        beat = await rules.load_beat(uow, story, position)
        rules.require_author(actor, story, beat, "remove")
        await uow.beats.remove(story.id, position)
        await audit(deps, uow, actor, AuditAction.BEAT_REMOVED, story_id=story.id,
                    target=f"beat {position}", detail=beat.text)  # fmt: skip
        return beat


async def move_beat(deps: Deps, actor: Actor, position: int, to_position: int) -> Beat:
    """Move a beat to another position (its author, the owner or a moderator)."""
    async with deps.db.writing() as uow:
        story = await rules.load_story(uow, actor, for_update=True)
        beat = await rules.load_beat(uow, story, position)
        rules.require_author(actor, story, beat, "move")
        count = await uow.beats.count(story.id)
        if not 1 <= to_position <= count:
            raise InvalidInput(f"Move it to a position from 1 to {count}.")
        await uow.beats.move(story.id, position, to_position)
        return replace(beat, position=to_position)


async def undo_beat(deps: Deps, actor: Actor) -> Beat:
    """Remove the actor's most recent beat in this thread."""
    async with deps.db.writing() as uow:
        story = await rules.load_story(uow, actor, for_update=True)
        beat = await uow.beats.last_by(story.id, actor.member_id)
        if beat is None:
            raise NotFound("You have no beats in this story to undo.")
        await uow.beats.remove(story.id, beat.position)
        await audit(deps, uow, actor, AuditAction.BEAT_REMOVED, story_id=story.id,
                    target=f"beat {beat.position}", detail=beat.text)  # fmt: skip
        return beat


async def list_beats(deps: Deps, actor: Actor, page: int = 1, per_page: int = 10) -> BeatPage:
    """One page of the story's beats, in order."""
    check_page_size(per_page)
    async with deps.db.reading() as uow:
        story = await rules.load_story(uow, actor)
        total = await uow.beats.count(story.id)
        pages = max(1, -(-total // per_page))
        if not 1 <= page <= pages:
            raise InvalidInput(f"Pick a page from 1 to {pages}.")
        beats = await uow.beats.page(story.id, (page - 1) * per_page, per_page)
        return BeatPage(tuple(beats), page, pages, total)


async def story_beats(deps: Deps, actor: Actor) -> tuple[Beat, ...]:
    """Every beat of the story, in order (at most MAX_BEATS): for lists that page by length."""
    async with deps.db.reading() as uow:
        story = await rules.load_story(uow, actor)
        return tuple(await uow.beats.page(story.id, 0, MAX_BEATS))


async def cast_character(deps: Deps, actor: Actor, name: str, description: str) -> Character:
    """Add a character, or describe an existing one anew (which unlocks its look)."""
    name = clean_name(name)
    description = clean_text(description, "description", MAX_DESCRIPTION_CHARS)
    await moderate(deps, actor, name=name, description=description)
    async with deps.db.writing() as uow:
        story = await rules.load_story(uow, actor, for_update=True)
        await audit(deps, uow, actor, AuditAction.CHARACTER_CAST, story_id=story.id,
                    target=name, detail=description)  # fmt: skip
        cast = await uow.characters.list(story.id)
        now = deps.clock()
        existing = rules.find_character(cast, name)
        if existing is None:
            if len(cast) >= MAX_CHARACTERS:
                raise LimitExceeded(f"A story has at most {MAX_CHARACTERS} characters.")
            return await uow.characters.add(
                story.id, name, description, deps.new_seed(), actor.member_id, now
            )
        if existing.created_by != actor.member_id and not rules.manages(actor, story):
            raise Forbidden(
                f"{existing.name} was cast by someone else; only they, the story's owner "
                "or a moderator can change them."
            )
        return await uow.characters.update(
            existing.id, now, description=description, lock_state=LockState.DRAFT
        )


async def _look_target(uow: UnitOfWork, actor: Actor, name: str) -> tuple[Story, Character]:
    story = await rules.load_story(uow, actor, for_update=True)
    cast = await uow.characters.list(story.id)
    character = rules.find_character(cast, name)
    if character is None:
        raise UnknownCharacter([name], [c.name for c in cast])
    return story, character


async def _earlier(uow: UnitOfWork, story: Story, request_key: str | None) -> RenderJob | None:
    """The job this chat request already asked for, still queued or running (a retry or a
    double click); a finished one does not stop the member from asking again."""
    return None if request_key is None else await uow.jobs.by_request(story.id, request_key)


async def _record_job(
    deps: Deps,
    uow: UnitOfWork,
    actor: Actor,
    story: Story,
    kind: JobKind,
    request_key: str | None,
    *,
    beats: Sequence[Beat] = (),
    **target: int,
) -> RenderJob:
    """Record a queued job in this transaction, if the server lets the actor render and
    the caps admit it (`target`: the beats or the character it renders). The caller submits
    it once the transaction committed."""
    server = await server_settings(deps, uow, actor.workspace_id)
    _check_renderer(actor, server)
    first, last = target.get("first_position"), target.get("last_position")
    if first is not None and last is not None and last - first + 1 > server.max_panels_per_job:
        raise LimitExceeded(
            f"A render here draws at most {server.max_panels_per_job} panels; pick a range "
            "of beats (first and last)."
        )
    if deps.admit_job is not None:
        await deps.admit_job(uow, actor)
    job = await uow.jobs.add(
        story.id,
        kind,
        actor.member_id,
        actor.display_name,
        deps.clock(),
        request_key=request_key,
        safety=server.effective_safety(actor.age_restricted).value,
        beats=beats,
        **target,
    )
    span = f"beats {first}-{last}" if first is not None else None
    await audit(deps, uow, actor, AuditAction.JOB_REQUESTED, story_id=story.id, job_id=job.id,
                target=f"{kind.value} {span}" if span else kind.value)  # fmt: skip
    return job


def _check_renderer(actor: Actor, server: ServerSettings) -> None:
    """Who may queue renders on this server (moderators always may)."""
    who = server.who_renders
    if who == EVERYONE or actor.is_moderator:
        return
    if who == MODERATORS:
        raise Forbidden("On this server only moderators can render.")
    if who.startswith(ROLE) and who[len(ROLE) :] in actor.roles:
        return
    raise Forbidden("On this server only members with the render role can render.")


async def lock_look(
    deps: Deps, actor: Actor, name: str, *, request_key: str | None = None
) -> LookResult:
    """Lock a character's look: render its sheet first if none exists, else lock the sheet.
    A repeated request returns the first one's result."""
    name = clean_name(name)
    async with deps.db.writing() as uow:
        story, character = await _look_target(uow, actor, name)
        if (earlier := await _earlier(uow, story, request_key)) is not None:
            return LookResult(character, earlier)
        if character.lock_state is LockState.LOCKED:
            raise Conflict(f"{character.name}'s look is already locked; re-roll to change it.")
        if character.lock_state is LockState.SHEET_RENDERED:
            locked = await uow.characters.update(
                character.id, deps.clock(), lock_state=LockState.LOCKED
            )
            return LookResult(locked, None)
        deps.render_limits.check(JobKind.SHEET, 0)
        job = await _record_job(
            deps, uow, actor, story, JobKind.SHEET, request_key, character_id=character.id
        )
    await deps.queue.submit(job.id)
    return LookResult(character, job)


async def reroll_look(
    deps: Deps, actor: Actor, name: str, *, request_key: str | None = None
) -> LookResult:
    """Draw a new look for a character (a new seed and sheet); a locked look needs its
    creator, the owner or a moderator. A repeated request draws nothing new."""
    name = clean_name(name)
    async with deps.db.writing() as uow:
        story, character = await _look_target(uow, actor, name)
        if (earlier := await _earlier(uow, story, request_key)) is not None:
            return LookResult(character, earlier)
        if (
            character.lock_state is LockState.LOCKED
            and character.created_by != actor.member_id
            and not rules.manages(actor, story)
        ):
            raise Forbidden(
                f"{character.name}'s look is locked; only whoever cast them, the story's "
                "owner or a moderator can re-roll it."
            )
        deps.render_limits.check(JobKind.REROLL, 0)
        updated = await uow.characters.update(
            character.id, deps.clock(), seed=deps.new_seed(), lock_state=LockState.DRAFT
        )
        job = await _record_job(
            deps, uow, actor, story, JobKind.REROLL, request_key, character_id=character.id
        )
    await deps.queue.submit(job.id)
    return LookResult(updated, job)


async def set_style(deps: Deps, actor: Actor, style: str) -> Story:
    """Change the story's style (owner or moderator); looks drawn in the old style unlock."""
    async with deps.db.reading() as uow:
        server = await server_settings(deps, uow, actor.workspace_id)
    style = _check_style(deps, style, server)
    async with deps.db.writing() as uow:
        story = await rules.load_story(uow, actor, for_update=True)
        rules.require_manager(actor, story, "change the style")
        if style != story.style:
            await uow.stories.update(story.id, style=style)
            # The style is part of every identity spec (DESIGN §3): old looks no longer hold.
            await uow.characters.reset_looks(story.id, deps.clock())
        return replace(story, style=style)


async def _request(
    deps: Deps,
    actor: Actor,
    kind: JobKind,
    first: int | None,
    last: int | None,
    request_key: str | None,
) -> RenderJob:
    async with deps.db.writing() as uow:
        story = await rules.load_story(uow, actor, for_update=True)
        if (earlier := await _earlier(uow, story, request_key)) is not None:
            return earlier
        count = await uow.beats.count(story.id)
        if count == 0:
            raise InvalidInput("This story has no beats yet; add one with /story add.")
        start = 1 if first is None else first
        end = count if last is None else last
        if not 1 <= start <= end <= count:
            raise InvalidInput(f"Pick beats within 1–{count}, the first no later than the last.")
        deps.render_limits.check(kind, end - start + 1)
        beats = await uow.beats.page(story.id, start - 1, end - start + 1)
        job = await _record_job(
            deps, uow, actor, story, kind, request_key,
            first_position=start, last_position=end, beats=beats,
        )  # fmt: skip
    await deps.queue.submit(job.id)
    return job


async def render_again(
    deps: Deps,
    actor: Actor,
    job_id: int,
    kind: JobKind | None = None,
    *,
    request_key: str | None = None,
) -> RenderJob:
    """Ask again for what an earlier page or clip drew (as a `kind`, by default a page or
    clip as before): the same beats, by id, wherever they are now and as they read now.
    If any of them was removed since, say so."""
    async with deps.db.writing() as uow:
        story = await rules.load_story(uow, actor, for_update=True)
        if (earlier := await _earlier(uow, story, request_key)) is not None:
            return earlier
        old = await uow.jobs.get(story.id, job_id)
        if old is None or old.kind not in (JobKind.PAGE, JobKind.CLIP, JobKind.PANEL):
            raise NotFound(f"This story has no page or clip #{job_id}.")
        kind = kind or (JobKind.PAGE if old.kind == JobKind.PANEL else old.kind)
        found = [await uow.beats.by_id(story.id, b.id) for b in old.beats]
        beats = sorted((b for b in found if b is not None), key=lambda b: b.position)
        gone = len(found) - len(beats)
        if not old.beats or not beats:
            raise NotFound("The beats of that page were removed; use /story render.")
        if gone:
            raise NotFound(
                f"{gone} of the beats that {kind.value} drew {'was' if gone == 1 else 'were'} "
                "removed since; use /story render for the story as it is now."
            )
        deps.render_limits.check(kind, len(beats))
        job = await _record_job(
            deps, uow, actor, story, kind, request_key,
            first_position=beats[0].position, last_position=beats[-1].position, beats=beats,
        )  # fmt: skip
    await deps.queue.submit(job.id)
    return job


async def render(
    deps: Deps,
    actor: Actor,
    first: int | None = None,
    last: int | None = None,
    *,
    request_key: str | None = None,
) -> RenderJob:
    """Queue a comic page of all beats, or of beats `first`..`last`. A `request_key` (the
    chat platform's id of the request) makes a repeated request return the first job."""
    return await _request(deps, actor, JobKind.PAGE, first, last, request_key)


async def clip(
    deps: Deps,
    actor: Actor,
    first: int | None = None,
    last: int | None = None,
    *,
    request_key: str | None = None,
) -> RenderJob:
    """Queue an animated clip of all beats, or of beats `first`..`last` (see `render`)."""
    return await _request(deps, actor, JobKind.CLIP, first, last, request_key)


async def reroll_panel(
    deps: Deps, actor: Actor, position: int, *, request_key: str | None = None
) -> RenderJob:
    """Draw one beat's panel again with a new seed (its author, the owner or a moderator);
    later pages keep the new panel. A repeated request returns the first job."""
    async with deps.db.writing() as uow:
        story = await rules.load_story(uow, actor, for_update=True)
        if (earlier := await _earlier(uow, story, request_key)) is not None:
            return earlier
        beat = await rules.load_beat(uow, story, position)
        job = await _reroll(deps, uow, actor, story, beat, request_key)
    await deps.queue.submit(job.id)
    return job


async def reroll_beat(
    deps: Deps, actor: Actor, beat_id: int, *, request_key: str | None = None
) -> RenderJob:
    """`reroll_panel` for the beat a button was drawn for, wherever it is now; a beat
    removed since gets a sentence, not another beat's panel."""
    async with deps.db.writing() as uow:
        story = await rules.load_story(uow, actor, for_update=True)
        if (earlier := await _earlier(uow, story, request_key)) is not None:
            return earlier
        beat = await uow.beats.by_id(story.id, beat_id)
        if beat is None:
            raise NotFound("That beat was removed; it has no panel to draw again.")
        job = await _reroll(deps, uow, actor, story, beat, request_key)
    await deps.queue.submit(job.id)
    return job


async def _reroll(
    deps: Deps, uow: UnitOfWork, actor: Actor, story: Story, beat: Beat, key: str | None
) -> RenderJob:
    rules.require_author(actor, story, beat, "re-roll")
    deps.render_limits.check(JobKind.PANEL, 1)
    drawn = replace(beat, variant=beat.variant + 1)  # the new seed is what the job draws
    job = await _record_job(
        deps, uow, actor, story, JobKind.PANEL, key,
        first_position=beat.position, last_position=beat.position, beats=[drawn],
    )  # fmt: skip
    await uow.beats.set_variant(beat.id, drawn.variant)
    return job


async def status(deps: Deps, actor: Actor) -> StoryOverview:
    """The story, its size, its cast and its most recent jobs."""
    async with deps.db.reading() as uow:
        story = await rules.load_story(uow, actor)
        return StoryOverview(
            story,
            await uow.beats.count(story.id),
            tuple(await uow.characters.list(story.id)),
            tuple(await uow.jobs.recent(story.id, RECENT_JOBS)),
        )


async def cancel(deps: Deps, actor: Actor, job_id: int | None = None) -> RenderJob:
    """Cancel a queued or running job (its requester, the owner or a moderator); without an
    id, the actor's newest active job. Workers see the status and stop."""
    async with deps.db.writing() as uow:
        story = await rules.load_story(uow, actor, for_update=True)
        if job_id is None:
            mine = [
                j
                for j in await uow.jobs.recent(story.id, RECENT_JOBS * 4)
                if j.status.active and j.requested_by == actor.member_id
            ]
            if not mine:
                raise NotFound("You have no queued or running job in this story.")
            job = mine[0]
        else:
            found = await uow.jobs.get(story.id, job_id)
            if found is None:
                raise NotFound(f"There is no job {job_id} in this story.")
            job = found
        if job.requested_by != actor.member_id and not rules.manages(actor, story):
            raise Forbidden(
                "Only whoever asked for this job, the story's owner or a moderator can cancel it."
            )
        if not job.status.active:
            raise Conflict(f"Job {job.id} is already {job.status.value}.")
        now = deps.clock()
        await uow.jobs.set_status(job.id, JobStatus.CANCELLED, now)
        await audit(deps, uow, actor, AuditAction.JOB_CANCELLED, story_id=story.id, job_id=job.id)
        return replace(job, status=JobStatus.CANCELLED, updated_at=now)


async def export(deps: Deps, actor: Actor) -> StoryExport:
    """The whole story as values (see `StoryExport.to_toml` for a story file)."""
    async with deps.db.reading() as uow:
        story = await rules.load_story(uow, actor)
        beats = await uow.beats.page(story.id, 0, MAX_BEATS)
        return StoryExport(story, tuple(await uow.characters.list(story.id)), tuple(beats))


async def delete_story(deps: Deps, actor: Actor) -> Story:
    """Delete the story with all its beats, cast and job records (owner or moderator); its
    audit entries keep their ids and lose their text."""
    async with deps.db.writing() as uow:
        story = await rules.load_story(uow, actor, for_update=True)
        rules.require_manager(actor, story, "delete the story")
        jobs = await uow.jobs.recent(story.id, 10**6)
        gone = DeletedStory(
            story, tuple(j.id for j in jobs), tuple(await uow.characters.list(story.id))
        )
        await uow.stories.delete(story.id)
        await uow.audit.forget_text(story.id)
        await audit(deps, uow, actor, AuditAction.STORY_DELETED, story_id=story.id)
    if deps.forget_files is not None:
        await deps.forget_files(gone)
    return story
