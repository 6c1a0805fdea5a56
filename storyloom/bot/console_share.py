"""`/story share`, `/story unshare [N]` and `/story links` in the console room."""

from __future__ import annotations

from collections.abc import Callable

from storyloom.bot import share_text
from storyloom.storage.share_links import share_links
from storyloom.story import sharing
from storyloom.story.errors import InvalidInput
from storyloom.story.escaping import escape_plain
from storyloom.story.model import Actor
from storyloom.story.service import Deps

SUBCOMMANDS = ("share", "unshare", "links")


async def share_command(
    deps: Deps, actor: Actor, base_url: str | None, sub: str, text: str, say: Callable[[str], None]
) -> None:
    """Run one of SUBCOMMANDS and say its answer."""
    if sub == "share":
        say(share_text.shared(await sharing.share(deps, share_links, actor, base_url)))
    elif sub == "unshare":
        if text and not text.isdigit():
            raise InvalidInput("Give one link number, e.g. /story unshare 3, or none for all.")
        link_id = int(text) if text else None
        say(share_text.revoked(await sharing.unshare(deps, share_links, actor, link_id)))
    else:
        say(share_text.listed(await sharing.server_links(deps, share_links, actor), escape_plain))
