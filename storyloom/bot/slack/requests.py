"""Slack request bodies → our own values, at the edge; nothing past here reads a raw dict."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Any

from storyloom.story.model import Actor

_MENTION_PREFIX = re.compile(r"^\s*<@[A-Z0-9]+>\s*")
_STORY_ID = re.compile(r"^#(\d+)\s*")
# Slack's message encoding: `<!channel>`, `<@U1|name>`, `<#C1|name>`, `<https://x|label>`
_SPECIAL = re.compile(r"<([!@#]?)([^<>|]*)(?:\|([^<>]*))?>")


def plain_text(encoded: str) -> str:
    """Slack-encoded message text as the member sees it: mentions and links become plain
    words (`<!channel>` → `@channel`), entities decoded. We store this, never the markup, so
    a stored beat cannot ping anyone when it is posted again (escaped) later."""

    def word(match: re.Match[str]) -> str:
        sigil, target, label = match.groups()
        if sigil == "!":
            return "@" + (label or target.split("^")[0])
        if sigil:
            return sigil + (label or target)
        return label or target

    text = _SPECIAL.sub(word, encoded)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass(frozen=True)
class Where:
    """The workspace, channel and (if known) thread a request comes from, and who sent it."""

    team_id: str
    channel_id: str
    thread_ts: str | None
    user_id: str
    user_name: str
    # bodies carry no roles: set from `users.info` (members.py) before the core is called
    is_moderator: bool = False

    def actor(self, thread_ts: str) -> Actor:
        """The core's Actor in the story thread `thread_ts` of this channel."""
        return Actor(
            self.team_id,
            self.channel_id,
            thread_ts,
            self.user_id,
            self.user_name,
            is_moderator=self.is_moderator,
        )

    def known_as(self, name: str, is_moderator: bool) -> Where:
        """The same request, with the sender's display name and role from Slack."""
        return replace(self, user_name=name, is_moderator=is_moderator)


@dataclass(frozen=True)
class SlashCommand:
    """`/story SUB [#ID] ARGS…` typed in a channel."""

    where: Where
    sub: str
    story_id: int | None
    args: str
    trigger_id: str

    @property
    def key(self) -> str | None:
        """Its idempotency key: one invocation, one trigger id."""
        return f"slack:{self.trigger_id}" if self.trigger_id else None


@dataclass(frozen=True)
class Mention:
    """`@storyloom SUB ARGS…` said in a thread (or in the channel)."""

    where: Where
    sub: str
    args: str
    key: str | None = None  # the event's id: Slack retries an event it thinks was missed


@dataclass(frozen=True)
class BeatForm:
    """The add-a-beat modal, submitted: the beat and the story thread it goes to."""

    where: Where
    thread_ts: str
    text: str


@dataclass(frozen=True)
class ButtonPress:
    """A button on one of our messages; its value carries the story thread and an argument."""

    where: Where
    action: str
    thread_ts: str
    arg: str
    trigger_id: str
    key: str | None = None  # one member's press on one message: a double click is one press


def split_sub(text: str) -> tuple[str, str]:
    """`"add [Mira] waves"` → `("add", "[Mira] waves")`; empty text is `help`."""
    sub, _, rest = text.strip().partition(" ")
    return (sub.lower() or "help"), rest.strip()


def slash_command(body: dict[str, Any]) -> SlashCommand:
    """A slash command's form body as a SlashCommand."""
    # `/story #4 add …` and `/story add #4 …` both name story 4
    text = plain_text(body.get("text", "")).strip()
    story_id = None
    match = _STORY_ID.match(text)
    if match:
        story_id, text = int(match.group(1)), text[match.end() :]
    sub, rest = split_sub(text)
    match = _STORY_ID.match(rest)
    if story_id is None and match:
        story_id, rest = int(match.group(1)), rest[match.end() :]
    where = Where(body["team_id"], body["channel_id"], None, body["user_id"], body["user_name"])
    return SlashCommand(where, sub, story_id, rest, body.get("trigger_id", ""))


def mention(event: dict[str, Any], team_id: str, event_id: str | None = None) -> Mention:
    """An `app_mention` event as a Mention, the bot's own `<@U…>` prefix removed (events
    carry no name: it is the user id until `Where.known_as`)."""
    text = _MENTION_PREFIX.sub("", event.get("text", ""), count=1)
    sub, rest = split_sub(plain_text(text))
    user = event["user"]
    where = Where(team_id, event["channel"], event.get("thread_ts"), user, user)
    return Mention(where, sub, rest, f"slack-event:{event_id}" if event_id else None)


def button_press(body: dict[str, Any]) -> ButtonPress:
    """A `block_actions` body (its first action: a button, or an option picked from a
    menu) as a ButtonPress."""
    action = body["actions"][0]
    value = action["selected_option"]["value"] if "selected_option" in action else action["value"]
    thread_ts, _, arg = value.partition("|")
    user = body["user"]
    where = Where(
        body["team"]["id"],
        body["channel"]["id"],
        thread_ts,
        user["id"],
        user.get("name") or user.get("username") or user["id"],
    )
    # `story_redraw:3`: the part after `:` only keeps same-action buttons apart
    name = action["action_id"].removeprefix("story_").partition(":")[0]
    message_ts = body.get("container", {}).get("message_ts", "")
    pressed = f"{message_ts}|{action['action_id']}|{value}|{user['id']}"
    key = "slack-press:" + hashlib.sha256(pressed.encode()).hexdigest()[:40]
    return ButtonPress(where, name, thread_ts, arg, body.get("trigger_id", ""), key)


def beat_form(body: dict[str, Any]) -> BeatForm:
    """A `view_submission` body of the add-a-beat modal as a BeatForm."""
    view = body["view"]
    channel_id, _, thread_ts = view["private_metadata"].partition("|")
    text = view["state"]["values"]["beat"]["text"]["value"] or ""
    user = body["user"]
    where = Where(
        body["team"]["id"], channel_id, thread_ts, user["id"], user.get("name") or user["id"]
    )
    return BeatForm(where, thread_ts, text)
