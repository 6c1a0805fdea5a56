"""Checks the use cases share: who may do what, and what a beat may name."""

from __future__ import annotations

from collections.abc import Iterable

from storyloom.story.errors import Forbidden, LimitExceeded, NotFound, UnknownCharacter
from storyloom.story.grammar import ParsedBeat
from storyloom.story.limits import MAX_PER_BEAT, name_key
from storyloom.story.model import Actor, Beat, Character, Story
from storyloom.story.ports import UnitOfWork

NO_STORY = "There is no story in this thread yet. Start one with /story new TITLE."


def manages(actor: Actor, story: Story) -> bool:
    """Moderators and the story's owner may change anything in it."""
    return actor.is_moderator or actor.member_id == story.owner_id


def require_manager(actor: Actor, story: Story, what: str) -> None:
    """Only moderators and the owner may do `what`."""
    if not manages(actor, story):
        raise Forbidden(f"Only the story's owner or a moderator can {what}.")


def require_author(actor: Actor, story: Story, beat: Beat, what: str) -> None:
    """Authors may change their own beats; managers may change any."""
    if beat.author_id != actor.member_id and not manages(actor, story):
        raise Forbidden(
            f"Beat {beat.position} is {beat.author_name}'s; only they, the story's owner "
            f"or a moderator can {what} it."
        )


async def load_story(uow: UnitOfWork, actor: Actor, *, for_update: bool = False) -> Story:
    """The story of the actor's thread, or NotFound."""
    story = await uow.stories.get(actor.thread, for_update=for_update)
    if story is None:
        raise NotFound(NO_STORY)
    return story


async def load_beat(uow: UnitOfWork, story: Story, position: int) -> Beat:
    """The beat at `position` of this story, or NotFound naming the valid range."""
    beat = await uow.beats.get(story.id, position)
    if beat is None:
        count = await uow.beats.count(story.id)
        where = f"beats 1–{count}" if count else "no beats yet"
        raise NotFound(f"There is no beat {position}; this story has {where}.")
    return beat


def find_character(cast: Iterable[Character], name: str) -> Character | None:
    """The cast member with this name (case-insensitive)."""
    key = name_key(name)
    return next((c for c in cast if name_key(c.name) == key), None)


def check_beat_size(parsed: ParsedBeat) -> None:
    """A beat shows at most MAX_PER_BEAT characters (a panel has room for no more)."""
    if len(parsed.characters) > MAX_PER_BEAT:
        raise LimitExceeded(
            f"A beat can show at most {MAX_PER_BEAT} characters; this one tags "
            f"{len(parsed.characters)}."
        )


def check_cast(parsed: ParsedBeat, cast: Iterable[Character]) -> None:
    """Every tagged name must be in the cast; the error lists the cast."""
    cast = list(cast)
    unknown = [name for name in parsed.characters if find_character(cast, name) is None]
    if unknown:
        raise UnknownCharacter(unknown, [c.name for c in cast])
