"""Where a job's status message is, as one string the job row keeps (`status_ref`).

`slack/TEAM/CHANNEL/THREAD_TS/MESSAGE_TS`: enough to edit the message and post into its
thread after a restart. Slack ids are letters and digits and timestamps `digits.digits`,
so `/` never occurs inside a part, and the whole stays far below the row's 200 characters.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "slack"


@dataclass(frozen=True)
class StatusRef:
    """A status message (`message_ts`) in a story thread (`thread_ts`) of a workspace."""

    team_id: str
    channel_id: str
    thread_ts: str
    message_ts: str  # "" when there is no status message (only the thread is known)

    def encode(self) -> str:
        """The string stored in the job row."""
        return "/".join((PREFIX, self.team_id, self.channel_id, self.thread_ts, self.message_ts))

    @classmethod
    def decode(cls, text: str | None) -> StatusRef | None:
        """A stored reference back; None for none, or for another adapter's reference."""
        parts = (text or "").split("/")
        if len(parts) != 5 or parts[0] != PREFIX or not all(parts[1:4]):
            return None
        return cls(*parts[1:])
