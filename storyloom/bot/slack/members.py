"""Who a member is: their display name and whether they moderate, from `users.info`.

Slack request bodies carry a user id and (sometimes) a username, never a role. Workspace
admins and owners are storyloom's moderators (they may edit or remove anyone's beats,
cancel anyone's job, delete a story). The answer is cached for a short time per workspace
and member: a busy thread asks once a minute, not once a beat, and a demoted admin loses
the right within that minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cachetools import TTLCache
from slack_sdk.web.async_client import AsyncWebClient

CACHE_SECONDS = 60.0
CACHE_SIZE = 10_000  # members remembered at most (the oldest are forgotten first)


@dataclass(frozen=True)
class Member:
    """A member as storyloom credits them and what they may do."""

    name: str
    is_moderator: bool


def member_from(user: dict[str, object]) -> Member:
    """A `users.info` user object as a Member."""
    profile = user.get("profile")
    display = profile.get("display_name") if isinstance(profile, dict) else None
    name = str(display or user.get("name") or user.get("id") or "someone")
    moderator = any(user.get(role) is True for role in ("is_admin", "is_owner", "is_primary_owner"))
    return Member(name, moderator)


@dataclass
class Members:
    """`users.info`, cached for `ttl_s` seconds per (workspace, member)."""

    ttl_s: float = CACHE_SECONDS
    clock: Callable[[], float] = time.monotonic
    _cache: TTLCache[tuple[str, str], Member] = field(init=False)

    def __post_init__(self) -> None:
        # Bounded: the least recently used members are forgotten first. The clock is read
        # through self, so a test may swap it after construction.
        self._cache = TTLCache(maxsize=CACHE_SIZE, ttl=self.ttl_s, timer=lambda: self.clock())

    async def get(self, client: AsyncWebClient, team_id: str, user_id: str) -> Member:
        """The member `user_id` of workspace `team_id`, asked of Slack at most every ttl_s."""
        key = (team_id, user_id)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        member = member_from((await client.users_info(user=user_id))["user"])
        self._cache[key] = member
        return member
