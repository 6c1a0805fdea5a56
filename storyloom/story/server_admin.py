"""Use cases for a server's moderators: its settings and its audit trail.

A moderator acts on the server they speak in (`Actor.workspace_id`, as the platform says),
never on another: a moderator of one server is a plain member everywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence

from storyloom.story.audit import AUDIT_PAGE, AuditAction, AuditEntry
from storyloom.story.errors import Forbidden, InvalidInput
from storyloom.story.model import Actor
from storyloom.story.server import ServerSettings, parse_change
from storyloom.story.service import Deps, audit, server_settings


def _require_moderator(actor: Actor, what: str) -> None:
    if not actor.is_moderator:
        raise Forbidden(f"Only this server's moderators can {what}.")


async def view_settings(deps: Deps, actor: Actor) -> ServerSettings:
    """The settings in force here (moderators)."""
    _require_moderator(actor, "see its settings")
    async with deps.db.reading() as uow:
        return await server_settings(deps, uow, actor.workspace_id)


async def change_setting(deps: Deps, actor: Actor, key: str, value: str) -> ServerSettings:
    """Set one setting (`default` puts it back to the process's default); audited."""
    _require_moderator(actor, "change its settings")
    key = key.strip().casefold()
    async with deps.db.writing() as uow:
        stored = await uow.servers.changes(actor.workspace_id)
        current = deps.server_defaults.with_changes(stored)
        changes = parse_change(key, value, current, stored, deps.styles)
        changed = deps.server_defaults.with_changes(changes)
        await uow.servers.put(actor.workspace_id, changes, actor.member_id, deps.clock())
        await audit(deps, uow, actor, AuditAction.SETTINGS_CHANGED, target=key, detail=value)
    return changed


async def audit_log(deps: Deps, actor: Actor, limit: int = AUDIT_PAGE) -> Sequence[AuditEntry]:
    """The server's newest audit entries (moderators)."""
    _require_moderator(actor, "read its audit trail")
    if not 1 <= limit <= 100:
        raise InvalidInput("Show 1–100 entries.")
    async with deps.db.reading() as uow:
        return await uow.audit.recent(actor.workspace_id, limit)
