"""The character library: a server's saved characters, cast into any of its stories.

`/character save NAME` keeps a story character's identity spec (and its sheet picture);
`/story cast NAME` without a description casts the saved one: same name, description,
seed, identity prompts and reference, so in a story of the same style the identity spec,
and with it the identity store key, is the same and a locked look stays locked there with
no lock pass. Whoever saved an entry, and moderators, may replace or delete it.

Reference pictures (`/story cast NAME DESCRIPTION` with a picture) are cleaned, checked by
the image safety check where one runs, and kept by hash in the character folder as long as
a character or an entry uses them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

from storyloom.story import rules, service
from storyloom.story.audit import AuditAction
from storyloom.story.character_file import CharacterFile, file_name, pack, unpack
from storyloom.story.errors import Conflict, Forbidden, InvalidInput, LimitExceeded, NotFound
from storyloom.story.library_ports import Library, LibraryCharacter
from storyloom.story.limits import clean_name
from storyloom.story.model import Actor, Character, DeletedStory, LockState
from storyloom.story.ports import Database
from storyloom.story.service import Deps, audit, moderate, server_settings

MAX_LIBRARY = 200  # characters per server
FLAGGED = "That picture was refused by this server's image safety check."


@dataclass(frozen=True)
class Cast:
    """A cast: the character, and the library entry it came from (None: described here);
    `kept_lock`: the entry's locked look holds here as it is (no sheet to draw)."""

    character: Character
    entry: LibraryCharacter | None = None
    kept_lock: bool = False


def _may_change(actor: Actor, entry: LibraryCharacter) -> bool:
    return actor.is_moderator or entry.saved_by == actor.member_id


def _forbidden(entry: LibraryCharacter, what: str) -> Forbidden:
    return Forbidden(
        f"{entry.name} was saved by {entry.saved_by_name}; only they or a moderator can {what} it."
    )


async def _forget(deps: Deps | Database, lib: Library, names: Iterable[str]) -> None:
    """Delete the picture files no character or entry uses any more (after the commit)."""
    db = deps.db if isinstance(deps, Deps) else deps
    for name in dict.fromkeys(names):
        async with db.reading() as uow:
            used = await lib.of(uow).file_in_use(name)
        if not used:
            await lib.files.remove(name)


async def _check_picture(deps: Deps, lib: Library, actor: Actor, picture: bytes) -> None:
    """Refuse a picture the server's image safety check flags (none running: no check)."""
    if lib.flagged is None:
        return
    async with deps.db.reading() as uow:
        server = await server_settings(deps, uow, actor.workspace_id)
    level = server.effective_safety(actor.age_restricted).value
    if await lib.flagged(picture, level):
        raise InvalidInput(FLAGGED)


async def save(deps: Deps, lib: Library, actor: Actor, name: str) -> LibraryCharacter:
    """Save the thread's story character `name` in the server's library (a new entry, or
    the saver's or a moderator's replacement of one)."""
    name = clean_name(name)
    async with deps.db.reading() as uow:
        story = await rules.load_story(uow, actor)
        character = rules.find_character(await uow.characters.list(story.id), name)
    if character is None:
        raise NotFound(f"There is no {name} in this story's cast.")
    sheet = None
    if character.lock_state is not LockState.DRAFT:
        picture = await lib.sheet_of(story, character)
        if picture is not None:
            sheet = lib.file_name(picture)
            await lib.files.put(sheet, picture)
    entry = LibraryCharacter(
        0, actor.workspace_id, character.name, character.description, story.style,
        character.seed, (), character.lock_state is LockState.LOCKED, character.reference,
        sheet, actor.member_id, actor.display_name, deps.clock(),
    )  # fmt: skip
    try:
        saved, old = await _put(deps, lib, actor, entry, AuditAction.LIBRARY_SAVED, replace_ok=True)
    except Exception:  # refused: the sheet just kept goes, unless something else uses it
        await _forget(deps, lib, [sheet] if sheet else [])
        raise
    await _forget(deps, lib, old)
    return saved


async def _put(
    deps: Deps,
    lib: Library,
    actor: Actor,
    entry: LibraryCharacter,
    action: AuditAction,
    *,
    replace_ok: bool,
) -> tuple[LibraryCharacter, tuple[str, ...]]:
    """Store the entry, audited; the files the entry it replaced kept (to forget once
    unused)."""
    async with deps.db.writing() as uow:
        repo = lib.of(uow)
        existing = await repo.get(actor.workspace_id, entry.name)
        if existing is not None:
            if not replace_ok:
                raise Conflict(
                    f"The library already has {existing.name}; delete it first "
                    "(/character delete NAME)."
                )
            if not _may_change(actor, existing):
                raise _forbidden(existing, "replace")
            entry = replace(entry, id=existing.id)
        elif len(await repo.list(actor.workspace_id)) >= MAX_LIBRARY:
            raise LimitExceeded(f"A server's library holds at most {MAX_LIBRARY} characters.")
        saved = await repo.put(entry)
        await audit(deps, uow, actor, action, target=entry.name, detail=entry.description)
    return saved, existing.files() if existing is not None else ()


async def listing(deps: Deps, lib: Library, actor: Actor) -> tuple[LibraryCharacter, ...]:
    """The server's library, by name."""
    async with deps.db.reading() as uow:
        return tuple(await lib.of(uow).list(actor.workspace_id))


async def _entry(deps: Deps, lib: Library, actor: Actor, name: str) -> LibraryCharacter:
    name = clean_name(name)
    async with deps.db.reading() as uow:
        entry = await lib.of(uow).get(actor.workspace_id, name)
    if entry is None:
        raise NotFound(f"This server's library has no {name}; see /character list.")
    return entry


async def show(
    deps: Deps, lib: Library, actor: Actor, name: str
) -> tuple[LibraryCharacter, bytes | None]:
    """An entry and its sheet picture (None if it has none)."""
    entry = await _entry(deps, lib, actor, name)
    return entry, await lib.files.read(entry.sheet) if entry.sheet else None


async def delete(deps: Deps, lib: Library, actor: Actor, name: str) -> LibraryCharacter:
    """Remove an entry (its saver or a moderator); its pictures go once nothing uses them."""
    name = clean_name(name)
    async with deps.db.writing() as uow:
        repo = lib.of(uow)
        entry = await repo.get(actor.workspace_id, name)
        if entry is None:
            raise NotFound(f"This server's library has no {name}; see /character list.")
        if not _may_change(actor, entry):
            raise _forbidden(entry, "delete")
        await repo.delete(entry.id)
        await audit(deps, uow, actor, AuditAction.LIBRARY_DELETED, target=entry.name)
    await _forget(deps, lib, entry.files())
    return entry


async def export(deps: Deps, lib: Library, actor: Actor, name: str) -> tuple[str, bytes]:
    """An entry as a `.storyloom-character` file: (file name, bytes)."""
    entry = await _entry(deps, lib, actor, name)
    sheet = await lib.files.read(entry.sheet) if entry.sheet else None
    reference = await lib.files.read(entry.reference) if entry.reference else None
    data = pack(
        CharacterFile(entry.name, entry.description, entry.style, entry.seed,
                      entry.identity_prompts, entry.locked, sheet, reference)
    )  # fmt: skip
    return file_name(entry.name), data


async def import_character(deps: Deps, lib: Library, actor: Actor, data: bytes) -> LibraryCharacter:
    """Add the character a `.storyloom-character` file holds to the server's library;
    nothing is kept if any part of it is refused."""
    loaded = unpack(data)
    if loaded.style not in deps.styles:
        raise InvalidInput(f"The character's style {loaded.style!r} is not one this bot draws.")
    await moderate(deps, actor, name=loaded.name, description=loaded.description)
    reference = lib.clean_reference(loaded.reference) if loaded.reference is not None else None
    sheet = lib.clean_sheet(loaded.sheet) if loaded.sheet is not None else None
    for picture in (reference, sheet):
        if picture is not None:
            await _check_picture(deps, lib, actor, picture)
    kept = {lib.file_name(p): p for p in (reference, sheet) if p is not None}
    for file, picture in kept.items():
        await lib.files.put(file, picture)
    entry = LibraryCharacter(
        0, actor.workspace_id, loaded.name, loaded.description, loaded.style, loaded.seed,
        loaded.identity_prompts, loaded.locked,
        lib.file_name(reference) if reference else None,
        lib.file_name(sheet) if sheet else None, actor.member_id, actor.display_name,
        deps.clock(),
    )  # fmt: skip
    try:
        saved, _ = await _put(
            deps, lib, actor, entry, AuditAction.LIBRARY_IMPORTED, replace_ok=False
        )
    except Exception:
        await _forget(deps, lib, kept)
        raise
    return saved


async def cast(
    deps: Deps,
    lib: Library,
    actor: Actor,
    name: str,
    description: str = "",
    picture: bytes | None = None,
) -> Cast:
    """`/story cast`: with a description (and maybe a reference picture), a character
    described here; with a name alone, the library's character of that name."""
    if not description.strip():
        if picture is not None:
            raise InvalidInput("Describe the character too: /story cast NAME DESCRIPTION.")
        return await _cast_saved(deps, lib, actor, clean_name(name))
    reference = None
    if picture is not None:
        clean = lib.clean_reference(picture)
        await _check_picture(deps, lib, actor, clean)
        reference = lib.file_name(clean)
        await lib.files.put(reference, clean)
    try:
        character = await service.cast_character(deps, actor, name, description)
    except Exception:
        if reference is not None:
            await _forget(deps, lib, [reference])
        raise
    return Cast(await _set_look(deps, lib, character, reference=reference))


async def _cast_saved(deps: Deps, lib: Library, actor: Actor, name: str) -> Cast:
    async with deps.db.reading() as uow:
        entry = await lib.of(uow).get(actor.workspace_id, name)
        story = await rules.load_story(uow, actor)
    if entry is None:
        raise InvalidInput(
            f"Describe {name}: /story cast NAME DESCRIPTION (this server's library has no {name})."
        )
    character = await service.cast_character(deps, actor, entry.name, entry.description)
    # the story's character carries no identity prompts: an entry with its own prompts is a
    # different spec here, as is one drawn in another style
    kept = entry.locked and entry.style == story.style and not entry.identity_prompts
    updated = await _set_look(
        deps, lib, character, reference=entry.reference, seed=entry.seed,
        lock_state=LockState.LOCKED if kept else LockState.DRAFT,
    )  # fmt: skip
    return Cast(updated, entry, kept)


async def _set_look(
    deps: Deps,
    lib: Library,
    character: Character,
    *,
    reference: str | None,
    seed: int | None = None,
    lock_state: LockState | None = None,
) -> Character:
    """Give a just-cast character its reference (a cast replaces the look: no picture, no
    reference), and a saved seed and lock; forget a reference it no longer uses."""
    async with deps.db.writing() as uow:
        if seed is not None or lock_state is not None:
            character = await uow.characters.update(
                character.id, deps.clock(), seed=seed, lock_state=lock_state
            )
        await lib.of(uow).set_reference(character.id, reference)
    old = character.reference
    if old is not None and old != reference:
        await _forget(deps, lib, [old])
    return replace(character, reference=reference)


def forgetting(
    db: Database, lib: Library, then: Callable[[DeletedStory], Awaitable[None]] | None
) -> Callable[[DeletedStory], Awaitable[None]]:
    """`Deps.forget_files` that also deletes a deleted story's reference pictures nothing
    else uses (after `then`, the jobs' files)."""

    async def forget(gone: DeletedStory) -> None:
        if then is not None:
            await then(gone)
        await _forget(db, lib, [c.reference for c in gone.cast if c.reference])

    return forget
