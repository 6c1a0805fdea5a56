"""Every server's settings until its moderators change them: from the process settings."""

from __future__ import annotations

from storyloom.config import Settings
from storyloom.story.server import SafetyLevel, ServerSettings


def server_defaults(settings: Settings) -> ServerSettings:
    """The operator's choices as a server's starting settings."""
    return ServerSettings(
        safety=SafetyLevel(settings.safety_level),
        max_waiting_per_member=settings.max_waiting_per_member,
        max_waiting_per_workspace=settings.max_waiting_per_workspace,
        max_panels_per_job=settings.max_panels_per_job,
        default_style=settings.style,
    )
