"""`/story share`, `/story unshare [N]` and `/story links` on Slack: answered privately, as
every `/story` command is (a share link is a key to the story). Not offered as thread
mentions, whose answers the whole thread sees."""

from __future__ import annotations

from storyloom.bot import share_text
from storyloom.bot.slack.commands import Handler, Reply
from storyloom.storage.share_links import share_links
from storyloom.story import service, sharing
from storyloom.story.errors import InvalidInput
from storyloom.story.escaping import escape_slack
from storyloom.story.model import Actor


def share_subcommands(base_url: str | None) -> dict[str, Handler]:
    """The three subcommands, their links under `base_url` (None: sharing is off, and
    `share` says which setting turns it on)."""

    async def share(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
        new = await sharing.share(deps, share_links, actor, base_url)
        return Reply(share_text.shared(new))

    async def unshare(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
        words = args.split()
        if len(words) > 1 or (words and not words[0].isdigit()):
            raise InvalidInput("Give one link number, e.g. `unshare 3`, or none for all.")
        link_id = int(words[0]) if words else None
        return Reply(share_text.revoked(await sharing.unshare(deps, share_links, actor, link_id)))

    async def links(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
        live = await sharing.server_links(deps, share_links, actor)
        return Reply(share_text.listed(live, escape_slack))

    return {"share": share, "unshare": unshare, "links": links}
