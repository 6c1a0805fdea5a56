"""What every chat adapter says about share links, in one wording. `quote` is the
adapter's escaping for member text (titles, names)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from storyloom.story.sharing import NewLink, ShareLink


def shared(new: NewLink) -> str:
    """The answer to /story share (for the member who asked only: the link is the key)."""
    return (
        f"Anyone with this link can read the story: {new.url}\n"
        f"(link #{new.link.id}; `/story unshare` turns it off)"
    )


def revoked(links: Sequence[ShareLink]) -> str:
    """The answer to /story unshare."""
    ids = ", ".join(f"#{link.id}" for link in links)
    noun = "link" if len(links) == 1 else "links"
    return f"Revoked share {noun} {ids}: they open nothing now."


def listed(links: Sequence[ShareLink], quote: Callable[[str], str]) -> str:
    """The answer to /story links: every live link of the server."""
    if not links:
        return "This server has no live share links."
    lines = [
        f"#{link.id} {quote(link.story_title)} — by {quote(link.created_by_name)}, "
        f"{link.created_at:%Y-%m-%d}"
        for link in links
    ]
    return "\n".join([*lines, "Revoke one with `/story unshare link:N`."])
