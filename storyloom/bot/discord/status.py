"""A job's status message: what it says, and where it is (kept on the job row).

The reference is this adapter's own string (`discord:<channel>/<message>/<upload limit>`);
the jobs layer stores it as given, so a restarted bot still finds the message to edit and
knows the channel's upload limit for the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from storyloom.bot.discord.context import quote
from storyloom.jobs.progress import JobProgress
from storyloom.story.model import JobStatus, RenderJob

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # a bot's upload limit in a guild without boosts
_REF = re.compile(r"discord:(?P<channel>\d{1,20})/(?P<message>\d{1,20})/(?P<limit>\d{1,12})")

ICONS = {
    JobStatus.QUEUED: "⏳",
    JobStatus.RUNNING: "🎨",
    JobStatus.DONE: "✅",
    JobStatus.FAILED: "⚠️",
    JobStatus.CANCELLED: "✖️",
}


@dataclass(frozen=True)
class StatusRef:
    """Where a job's status message is, and the upload limit of its channel."""

    channel_id: int
    message_id: int
    upload_limit: int = DEFAULT_UPLOAD_LIMIT

    def encode(self) -> str:
        """The reference as stored on the job row (well under its 200 characters)."""
        return f"discord:{self.channel_id}/{self.message_id}/{self.upload_limit}"

    @classmethod
    def parse(cls, ref: str | None) -> StatusRef | None:
        """A stored reference read back; None for none, or for another adapter's."""
        found = _REF.fullmatch(ref or "")
        if found is None:
            return None
        return cls(int(found["channel"]), int(found["message"]), int(found["limit"]))


def bar(percent: int, width: int = 10) -> str:
    """A text progress bar, as image bots show it."""
    filled = max(0, min(width, percent * width // 100))
    return "▰" * filled + "▱" * (width - filled)


def status_text(
    job: RenderJob,
    status: JobStatus,
    error: str | None = None,
    place: int | None = None,
    progress: JobProgress | None = None,
) -> str:
    """The status line of a job, as the status message shows it."""
    text = f"{ICONS[status]} {job.kind.value} job #{job.id} {status.value}"
    if status == JobStatus.QUEUED and place is not None:
        text += " — next in line" if place == 1 else f" — {place} in line, {place - 1} ahead"
    if status == JobStatus.RUNNING and progress is not None:
        text += f" — {bar(progress.percent)} {progress.describe()}"
    return f"{text}: {quote(error)}" if error else text
