"""Share links: an unguessable, revocable link to a story's read-only reader page.

A link's token is 128 random bits; only its SHA-256 is stored, and a link is found by that
hash (an indexed equality on a digest: how long the lookup takes says nothing about the
token). The owner of a story or a moderator shares and unshares it; a moderator lists and
revokes any link of the server. The use cases take `links_of`, which gives the share-link
repository of a unit of work, so the core's `UnitOfWork` stays as it is.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from storyloom.story import rules
from storyloom.story.errors import Forbidden, InvalidInput, LimitExceeded, NotFound
from storyloom.story.model import Actor, Story
from storyloom.story.ports import Database, UnitOfWork
from storyloom.story.service import Deps

TOKEN_BYTES = 16  # 128 bits
# token_urlsafe(16): 22 characters of the URL-safe base64 alphabet, no padding
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")
MAX_LINKS_PER_STORY = 10
NO_BASE_URL = (
    "Sharing is not set up: the bot's operator must set STORYLOOM_PUBLIC_BASE_URL to the "
    "public https address of its operations server (and STORYLOOM_OPS_PORT to serve it)."
)


@dataclass(frozen=True)
class ShareLink:
    """A share link as stored (never its token)."""

    id: int
    story_id: int
    story_title: str
    workspace_id: str
    created_by: str
    created_by_name: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class NewLink:
    """A link just made: the only moment its token and address exist outside the member's
    chat."""

    link: ShareLink
    url: str


class ShareLinkRepository(Protocol):
    async def add(
        self, story: Story, token_hash: str, created_by: str, created_by_name: str, at: datetime
    ) -> ShareLink:
        """Store a new link of `story`."""
        ...

    async def get(self, link_id: int) -> ShareLink | None:
        """A link by id, revoked or not."""
        ...

    async def active_of_story(self, story_id: int) -> Sequence[ShareLink]:
        """The story's links not revoked, oldest first."""
        ...

    async def active_of_workspace(self, workspace_id: str) -> Sequence[ShareLink]:
        """Every link of the server not revoked, oldest first."""
        ...

    async def revoke(self, link_ids: Sequence[int], at: datetime) -> None:
        """Mark these links revoked."""
        ...

    async def story_of(self, token_hash: str) -> int | None:
        """The story id of the link with this token hash, if it is not revoked."""
        ...


LinksOf = Callable[[UnitOfWork], ShareLinkRepository]


def new_token() -> str:
    """A fresh link token: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What is stored and looked up for a token (hex SHA-256)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def well_formed(token: str) -> bool:
    """Whether `token` could be one of ours (anything else is refused without a lookup)."""
    return TOKEN_PATTERN.fullmatch(token) is not None


def reader_url(base_url: str, token: str) -> str:
    """The reader page's address for a token."""
    return f"{base_url.rstrip('/')}/s/{token}"


async def share(deps: Deps, links_of: LinksOf, actor: Actor, base_url: str | None) -> NewLink:
    """Make a new link to the thread's story (its owner or a moderator)."""
    if not base_url:
        raise InvalidInput(NO_BASE_URL)
    token = new_token()
    async with deps.db.writing() as uow:
        story = await rules.load_story(uow, actor, for_update=True)
        rules.require_manager(actor, story, "share it")
        links = links_of(uow)
        if len(await links.active_of_story(story.id)) >= MAX_LINKS_PER_STORY:
            raise LimitExceeded(
                f"This story already has {MAX_LINKS_PER_STORY} links; "
                "revoke some with /story unshare first."
            )
        link = await links.add(
            story, token_hash(token), actor.member_id, actor.display_name, deps.clock()
        )
    return NewLink(link, reader_url(base_url, token))


async def unshare(
    deps: Deps, links_of: LinksOf, actor: Actor, link_id: int | None = None
) -> tuple[ShareLink, ...]:
    """Revoke every link of the thread's story (its owner or a moderator), or one link of
    this server by id (a moderator, or the owner of its story); returns what was revoked."""
    async with deps.db.writing() as uow:
        links = links_of(uow)
        if link_id is None:
            story = await rules.load_story(uow, actor, for_update=True)
            rules.require_manager(actor, story, "unshare it")
            revoked = tuple(await links.active_of_story(story.id))
            if not revoked:
                raise NotFound("This story has no share links.")
        else:
            link = await links.get(link_id)
            if link is None or link.workspace_id != actor.workspace_id or link.revoked_at:
                raise NotFound(f"There is no share link {link_id} in this server.")
            owner = await uow.stories.by_id(link.story_id)
            if not actor.is_moderator and (owner is None or owner.owner_id != actor.member_id):
                raise Forbidden("Only the story's owner or a moderator can revoke its share links.")
            revoked = (link,)
        now = deps.clock()
        await links.revoke([link.id for link in revoked], now)
    return tuple(replace(link, revoked_at=now) for link in revoked)


async def server_links(deps: Deps, links_of: LinksOf, actor: Actor) -> tuple[ShareLink, ...]:
    """Every live link of the actor's server (moderators only)."""
    if not actor.is_moderator:
        raise Forbidden("Only moderators can list the server's share links.")
    async with deps.db.reading() as uow:
        return tuple(await links_of(uow).active_of_workspace(actor.workspace_id))


async def story_of_token(db: Database, links_of: LinksOf, token: str) -> int | None:
    """The story a live link's token opens, or None (malformed, unknown or revoked alike)."""
    if not well_formed(token):
        return None
    async with db.reading() as uow:
        return await links_of(uow).story_of(token_hash(token))
