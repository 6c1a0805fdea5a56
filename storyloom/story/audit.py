"""The audit trail: who did what, where and when, kept per server for its moderators.

Entries keep ids (member, story, beat position, job) and, where it helps a moderator, the
text involved (`detail`). Deleting a story clears that text and the names from its entries;
the ids stay, so the trail still shows that something happened and by whom.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

MAX_DETAIL_CHARS = 300
AUDIT_PAGE = 20


class AuditAction(StrEnum):
    STORY_CREATED = "story.created"
    STORY_DELETED = "story.deleted"
    BEAT_ADDED = "beat.added"
    BEAT_EDITED = "beat.edited"
    BEAT_REMOVED = "beat.removed"
    CHARACTER_CAST = "character.cast"
    LIBRARY_SAVED = "library.saved"  # a character saved (or replaced) in the server's library
    LIBRARY_IMPORTED = "library.imported"
    LIBRARY_DELETED = "library.deleted"
    JOB_REQUESTED = "job.requested"
    JOB_CANCELLED = "job.cancelled"
    SETTINGS_CHANGED = "settings.changed"
    TEXT_REFUSED = "safety.text_refused"  # the refused text itself is not kept
    PANEL_BLOCKED = "safety.panel_blocked"
    PANEL_BLURRED = "safety.panel_blurred"
    PANEL_ALLOWED = "safety.panel_allowed"  # flagged, posted as drawn (an age-restricted channel)


@dataclass(frozen=True)
class NewAuditEntry:
    """An entry to record (the repository adds its id)."""

    workspace_id: str
    at: datetime
    action: AuditAction
    actor_id: str
    actor_name: str | None = None
    story_id: int | None = None
    job_id: int | None = None
    target: str | None = None  # what was acted on, by id: "beat 3", "safety", "panel 2"
    detail: str | None = None  # the text involved (personal: cleared with its story)

    def __post_init__(self) -> None:
        if self.detail is not None and len(self.detail) > MAX_DETAIL_CHARS:
            object.__setattr__(self, "detail", self.detail[: MAX_DETAIL_CHARS - 1] + "…")


@dataclass(frozen=True)
class AuditEntry(NewAuditEntry):
    """A recorded entry."""

    id: int = 0

    def describe(self) -> str:
        """One line: when, who, what, on what."""
        who = self.actor_name or f"member {self.actor_id}"
        parts = [self.at.strftime("%Y-%m-%d %H:%M"), who, self.action.value]
        if self.story_id is not None:
            parts.append(f"story #{self.story_id}")
        if self.job_id is not None:
            parts.append(f"job #{self.job_id}")
        if self.target:
            parts.append(self.target)
        line = " · ".join(parts)
        return f"{line}: {self.detail}" if self.detail else line
