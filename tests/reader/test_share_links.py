"""Share links through the use cases, on a real SQLite file: who may share, unshare, list
and revoke; only a hash of the token is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storyloom.storage.share_links import share_links
from storyloom.story import sharing
from storyloom.story.errors import Forbidden, InvalidInput, LimitExceeded, NotFound
from storyloom.story.model import Actor
from tests.reader.conftest import BASE_URL, MODERATOR, OWNER, WRITER, Shared

OTHER_SERVER_MOD = Actor("other-guild", "c", "t", "mod2", "Mod Two", is_moderator=True)


async def _all_rows(shared: Shared) -> list[tuple[object, ...]]:
    async with shared.db.engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text("SELECT * FROM share_links"))]


async def test_a_link_holds_128_random_bits_and_the_database_keeps_only_its_hash(
    shared: Shared,
) -> None:
    token = shared.token
    assert shared.link.url == f"{BASE_URL}s/{token}"
    assert sharing.well_formed(token) and len(token) == 22  # 22 × 6 bits = 132 ≥ 128
    other = await sharing.share(shared.deps, share_links, OWNER, BASE_URL)
    assert other.url != shared.link.url
    rows = await _all_rows(shared)
    stored = " ".join(map(str, rows))
    assert token not in stored and sharing.token_hash(token) in stored
    story_id = await sharing.story_of_token(shared.db, share_links, token)
    assert story_id == shared.link.link.story_id


async def test_without_a_public_address_share_says_what_to_set_and_stores_nothing(
    shared: Shared,
) -> None:
    before = await _all_rows(shared)
    for unset in (None, ""):
        with pytest.raises(InvalidInput, match="STORYLOOM_PUBLIC_BASE_URL"):
            await sharing.share(shared.deps, share_links, OWNER, unset)
    assert await _all_rows(shared) == before


async def test_only_the_owner_or_a_moderator_shares_and_unshares(shared: Shared) -> None:
    with pytest.raises(Forbidden):
        await sharing.share(shared.deps, share_links, WRITER, BASE_URL)
    with pytest.raises(Forbidden):
        await sharing.unshare(shared.deps, share_links, WRITER)
    with pytest.raises(Forbidden):
        await sharing.unshare(shared.deps, share_links, WRITER, shared.link.link.id)
    assert await sharing.story_of_token(shared.db, share_links, shared.token) is not None


async def test_unshare_revokes_every_link_of_the_story_at_once(shared: Shared) -> None:
    second = await sharing.share(shared.deps, share_links, OWNER, BASE_URL)
    revoked = await sharing.unshare(shared.deps, share_links, OWNER)
    assert {link.id for link in revoked} == {shared.link.link.id, second.link.id}
    assert all(link.revoked_at is not None for link in revoked)
    for url in (shared.link.url, second.url):
        token = url.rsplit("/", 1)[1]
        assert await sharing.story_of_token(shared.db, share_links, token) is None
    with pytest.raises(NotFound, match="no share links"):
        await sharing.unshare(shared.deps, share_links, OWNER)


async def test_a_moderator_lists_and_revokes_any_link_of_their_server_only(
    shared: Shared,
) -> None:
    with pytest.raises(Forbidden):
        await sharing.server_links(shared.deps, share_links, OWNER)
    listed = await sharing.server_links(shared.deps, share_links, MODERATOR)
    assert [(link.id, link.created_by_name) for link in listed] == [(shared.link.link.id, "Ann")]
    assert await sharing.server_links(shared.deps, share_links, OTHER_SERVER_MOD) == ()
    link_id = shared.link.link.id
    with pytest.raises(NotFound, match=f"no share link {link_id} in this server"):
        await sharing.unshare(shared.deps, share_links, OTHER_SERVER_MOD, link_id)
    # from another thread of the same server
    (revoked,) = await sharing.unshare(shared.deps, share_links, MODERATOR, link_id)
    assert revoked.id == link_id
    assert await sharing.server_links(shared.deps, share_links, MODERATOR) == ()
    with pytest.raises(NotFound):
        await sharing.unshare(shared.deps, share_links, MODERATOR, link_id)


async def test_malformed_unknown_and_revoked_tokens_open_nothing(shared: Shared) -> None:
    unknown = sharing.new_token()
    for token in ("", "x", shared.token + "A", "../../etc/passwd", unknown):
        assert await sharing.story_of_token(shared.db, share_links, token) is None


async def test_deleting_the_story_deletes_its_links(shared: Shared) -> None:
    from storyloom.story import service

    await service.delete_story(shared.deps, OWNER)
    assert await _all_rows(shared) == []


async def test_a_story_has_at_most_ten_live_links(shared: Shared) -> None:
    for _ in range(sharing.MAX_LINKS_PER_STORY - 1):
        await sharing.share(shared.deps, share_links, OWNER, BASE_URL)
    with pytest.raises(LimitExceeded, match="already has 10 links"):
        await sharing.share(shared.deps, share_links, OWNER, BASE_URL)
    await sharing.unshare(shared.deps, share_links, OWNER, shared.link.link.id)
    await sharing.share(shared.deps, share_links, OWNER, BASE_URL)  # room again
