"""`/story settings [KEY VALUE]` and `/story audit [N]` on Slack: a workspace's moderators
(its admins and owners) keep its settings and read its audit trail. They need no story, so
the adapter runs them before looking one up; answers are private (`/story` answers are)."""

from __future__ import annotations

from storyloom.bot.slack.commands import Handler, Reply
from storyloom.story import server_admin, service
from storyloom.story.command_words import AUDIT_COUNT
from storyloom.story.errors import InvalidInput
from storyloom.story.escaping import escape_slack as esc
from storyloom.story.model import Actor
from storyloom.story.server import describe


async def _settings(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    if not args.strip():
        shown = await server_admin.view_settings(deps, actor)
        return Reply("\n".join(esc(line) for line in describe(shown, deps.default_style)))
    setting, _, value = args.strip().partition(" ")
    await server_admin.change_setting(deps, actor, setting, value)
    return Reply(f"{esc(setting)} set to {esc(value.strip())}")


async def _audit(deps: service.Deps, actor: Actor, args: str, key: str | None) -> Reply:
    words = args.split()
    if len(words) > 1 or (words and not words[0].isdigit()):
        raise InvalidInput("Give how many entries to show, e.g. `audit 10`.")
    count = int(words[0]) if words else AUDIT_COUNT
    entries = await server_admin.audit_log(deps, actor, count)
    return Reply("\n".join(esc(entry.describe()) for entry in entries) or "No entries yet.")


# subcommands that act on the workspace, not on a story
SERVER_SUBCOMMANDS: dict[str, Handler] = {"settings": _settings, "audit": _audit}
