"""Escaping for chat output. The core stores raw text; adapters escape at the edge.

Every piece of member-written text the bot posts goes through one of these, so a beat can
neither format the bot's message nor ping anyone.
"""

from __future__ import annotations

import re

_ZWSP = "\u200b"
# Discord markdown: emphasis, code, spoilers, quotes, headings, lists, masked links.
_DISCORD_MARKDOWN = re.compile(r"([\\*_~`|>#\-\[\]()])")
# `<@123>`, `<@!123>`, `<@&123>`, `<#123>`, `</cmd:1>`, `<t:0>`: break the opening `<`.
_DISCORD_ANGLE = re.compile(r"<(?=[@#/:a-zA-Z!&])")
_BROADCAST = re.compile(r"@(everyone|here|channel)\b", re.IGNORECASE)


def escape_discord(text: str) -> str:
    """Text shown literally by Discord: markdown escaped, mentions and broadcasts defused."""
    text = _DISCORD_MARKDOWN.sub(r"\\\1", text)
    text = _DISCORD_ANGLE.sub("<" + _ZWSP, text)
    return _BROADCAST.sub("@" + _ZWSP + r"\1", text)


# Slack mrkdwn: bold, italic, strike, code. It has no backslash escape; a marker with a
# zero-width space on each side is inside a "word", where Slack formats nothing.
_SLACK_MARKUP = re.compile(r"([*_~`])")


def escape_slack(text: str) -> str:
    """Text shown literally by Slack mrkdwn: `& < >` escaped (so `<!channel>` and `<@U1>`
    cannot form), bare `@channel`/`@here`/`@everyone` defused, and the markers
    of bold, italic, strike and code kept from formatting."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _SLACK_MARKUP.sub(_ZWSP + r"\1" + _ZWSP, text)
    return _BROADCAST.sub("@" + _ZWSP + r"\1", text)


def escape_plain(text: str) -> str:
    """Text for a terminal: control characters other than newline and tab made visible."""
    return "".join(c if c in "\n\t" or c.isprintable() else f"\\u{ord(c):04x}" for c in text)
