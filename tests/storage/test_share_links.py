"""Share links on each backend (SQLite and PostgreSQL): stored as hashes, found only while
live, listed per server, revoked in one statement, gone with their story."""

from __future__ import annotations

import asyncio

from storyloom.storage.share_links import share_links
from storyloom.story import service, sharing
from storyloom.story.model import Actor
from storyloom.story.service import Deps

OWNER = Actor("g1", "c", "t1", "ann", "Ann")
OTHER = Actor("g1", "c", "t2", "bo", "Bo")
MOD = Actor("g1", "c", "t3", "mo", "Mo", is_moderator=True)
URL = "https://comics.example.org"


def token(link: sharing.NewLink) -> str:
    return link.url.rsplit("/", 1)[1]


async def test_links_live_until_revoked_and_die_with_their_story(deps: Deps) -> None:
    await service.new_story(deps, OWNER, "One")
    await service.new_story(deps, OTHER, "Two")
    # shared at once from two threads: each gets its own link
    one, two = await asyncio.gather(
        sharing.share(deps, share_links, OWNER, URL), sharing.share(deps, share_links, OTHER, URL)
    )
    assert await sharing.story_of_token(deps.db, share_links, token(one)) == one.link.story_id
    listed = await sharing.server_links(deps, share_links, MOD)
    # oldest first; the two were made at once, so either may be older
    assert [link.id for link in listed] == sorted(link.id for link in listed)
    assert sorted((link.story_title, link.created_by_name) for link in listed) == [
        ("One", "Ann"),
        ("Two", "Bo"),
    ]
    await sharing.unshare(deps, share_links, MOD, one.link.id)
    assert await sharing.story_of_token(deps.db, share_links, token(one)) is None
    assert await sharing.story_of_token(deps.db, share_links, token(two)) == two.link.story_id
    await service.delete_story(deps, OTHER)
    assert await sharing.story_of_token(deps.db, share_links, token(two)) is None
    assert await sharing.server_links(deps, share_links, MOD) == ()
