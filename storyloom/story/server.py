"""A server's own settings (a Discord guild, a Slack workspace), kept by its moderators.

The database keeps only what a moderator changed; everything else follows the process's
defaults (`Deps.server_defaults`), so an operator's later change still reaches servers that
never touched that setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from storyloom.story.errors import InvalidInput, LimitExceeded
from storyloom.story.limits import MAX_BEATS
from storyloom.story.moderation import MAX_ADDED_TERMS, MAX_TERM_CHARS


class SafetyLevel(StrEnum):
    """What happens to a panel the image check flags."""

    BLOCK = "block"  # replaced by a placeholder panel that says why
    BLUR = "blur"  # blurred beyond recognition
    OFF = "off"  # posted as drawn: only in channels the platform marks age-restricted


EVERYONE = "everyone"
MODERATORS = "moderators"
ROLE = "role:"  # role:ID (a Discord role id)


@dataclass(frozen=True)
class ServerSettings:
    """The settings in force for one server: its changes over the process's defaults."""

    safety: SafetyLevel = SafetyLevel.BLOCK
    words: tuple[str, ...] = ()  # terms added to the default word list
    max_waiting_per_member: int = 3
    max_waiting_per_workspace: int = 10
    max_panels_per_job: int = MAX_BEATS
    styles: tuple[str, ...] = ()  # the styles members may pick; () = every style
    default_style: str = ""  # "" = the process's default style
    who_renders: str = EVERYONE  # everyone, moderators, or role:ID

    def with_changes(self, changes: Mapping[str, Any]) -> ServerSettings:
        """These settings with stored changes applied (unknown keys from a newer version
        are ignored, so a rollback still reads the row)."""
        known = {f.name for f in fields(self)}
        values = {k: v for k, v in changes.items() if k in known}
        if "safety" in values:
            values["safety"] = SafetyLevel(values["safety"])
        for key in ("words", "styles"):
            if key in values:
                values[key] = tuple(values[key])
        return replace(self, **values)

    def style_for(self, fallback: str) -> str:
        """The style new stories get."""
        return self.default_style or fallback

    def effective_safety(self, age_restricted: bool) -> SafetyLevel:
        """`off` holds only where the platform marks the channel age-restricted."""
        if self.safety is SafetyLevel.OFF and not age_restricted:
            return SafetyLevel.BLOCK
        return self.safety


# What `/story settings KEY VALUE` accepts: the key members see → the field it sets.
KEYS = {
    "safety": "safety",
    "add-word": "words",
    "remove-word": "words",
    "max-waiting-member": "max_waiting_per_member",
    "max-waiting-server": "max_waiting_per_workspace",
    "max-panels": "max_panels_per_job",
    "styles": "styles",
    "default-style": "default_style",
    "who-renders": "who_renders",
}
RESET = "default"
_BOUNDS = {
    "max_waiting_per_member": (1, 1000),
    "max_waiting_per_workspace": (1, 10000),
    "max_panels_per_job": (1, MAX_BEATS),
}


def parse_change(
    key: str, value: str, current: ServerSettings, stored: Mapping[str, Any], styles: Iterable[str]
) -> dict[str, Any]:
    """The stored changes after `key` is set to `value` ("default" resets it); InvalidInput
    with the accepted values when it does not fit."""
    if key not in KEYS:
        raise InvalidInput(f"Unknown setting {key!r}. Settings: {', '.join(KEYS)}.")
    field_name, value = KEYS[key], " ".join(value.split())
    changes = dict(stored)
    if value.casefold() == RESET and key not in ("add-word", "remove-word"):
        changes.pop(field_name, None)
        return changes
    if not value:
        raise InvalidInput(f"Give a value for {key}, or `{RESET}`.")
    changes[field_name] = _value(key, field_name, value, current, sorted(styles))
    return changes


def _value(key: str, name: str, value: str, current: ServerSettings, styles: list[str]) -> Any:
    if name == "safety":
        levels = [level.value for level in SafetyLevel]
        if value.casefold() not in levels:
            raise InvalidInput(f"Safety is one of: {', '.join(levels)}.")
        return value.casefold()
    if name in _BOUNDS:
        low, high = _BOUNDS[name]
        if not value.isdigit() or not low <= int(value) <= high:
            raise InvalidInput(f"{key} is a whole number from {low} to {high}.")
        return int(value)
    if name == "words":
        return list(_words(key, value, current.words))
    if name == "styles":
        picked = [s.strip() for s in value.split(",") if s.strip()]
        unknown = [s for s in picked if s not in styles]
        if unknown or not picked:
            raise InvalidInput(f"Pick styles from: {', '.join(styles)} (comma-separated).")
        return sorted(set(picked))
    if name == "default_style":
        if value not in styles:
            raise InvalidInput(f"Unknown style {value!r}. Styles: {', '.join(styles)}.")
        return value
    who = value.casefold()
    if who in (EVERYONE, MODERATORS) or (
        who.startswith(ROLE) and who[len(ROLE) :].isdigit() and len(who) <= 64
    ):
        return who
    raise InvalidInput("who-renders is everyone, moderators, or role:ID (a role's id).")


def _words(key: str, term: str, words: tuple[str, ...]) -> tuple[str, ...]:
    if len(term) > MAX_TERM_CHARS:
        raise LimitExceeded(f"A term is at most {MAX_TERM_CHARS} characters.")
    if key == "remove-word":
        if term not in words:
            raise InvalidInput("That term is not on this server's list.")
        return tuple(w for w in words if w != term)
    if not any(c.isalpha() for c in term):
        raise InvalidInput("A term needs at least one letter.")
    if term in words:
        return words
    if len(words) >= MAX_ADDED_TERMS:
        raise LimitExceeded(f"A server adds at most {MAX_ADDED_TERMS} terms.")
    return (*words, term)


def describe(settings: ServerSettings, fallback_style: str) -> list[str]:
    """One line per setting, as `/story settings` shows them."""
    return [
        f"safety: {settings.safety.value}",
        f"added words: {len(settings.words)}"
        + (f" ({', '.join(settings.words)})" if settings.words else ""),
        f"max-waiting-member: {settings.max_waiting_per_member}",
        f"max-waiting-server: {settings.max_waiting_per_workspace}",
        f"max-panels: {settings.max_panels_per_job}",
        f"styles: {', '.join(settings.styles) if settings.styles else 'all'}",
        f"default-style: {settings.style_for(fallback_style)}",
        f"who-renders: {settings.who_renders}",
    ]
