"""Which strings are secrets, and how to show text without them.

The settings' `SecretStr` fields are secrets, and so is the password inside a database or
Redis URL (a plain string setting may still hold one). Logs and `storyloom doctor` mask
them all, whatever the message that carried them.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from storyloom.config import Settings

MASK = "**********"  # what pydantic shows for a SecretStr, so both read the same


def url_password(url: str) -> str | None:
    """The password inside `url` (scheme://user:password@host/...), if it has one."""
    try:
        password = urlsplit(url).password
    except ValueError:  # not a URL at all: nothing we can find in it
        return None
    return password or None


def url_address(url: str) -> str:
    """`url` without its user and password: scheme://host:port/path, for messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def secret_values(settings: Settings) -> tuple[str, ...]:
    """Every secret the settings hold, longest first (so one inside another is masked whole)."""
    found: set[str] = set()
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            found.add(value.get_secret_value())
    for url in (settings.database_url, settings.redis_url.get_secret_value()):
        password = url_password(url)
        if password:  # as written in the URL, and as the client sends it (percent-decoded)
            found.update((password, unquote(password)))
    return tuple(sorted(found, key=len, reverse=True))


def mask(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret replaced by the mask."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text
