"""Block Kit for our messages: the story anchor, job status messages, result buttons.

Every button's value is `THREAD_TS|ARG`: a press then names its story thread even when the
message sits in the channel (the anchor), and Slack signs the body that carries it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from storyloom.story.escaping import escape_slack
from storyloom.story.model import JobKind, JobStatus, RenderJob

if TYPE_CHECKING:  # jobs.progress imports the renderer (torch); only its type is used here
    from storyloom.jobs.progress import JobProgress

Block = dict[str, Any]
ADD_BEAT_VIEW = "story_add_beat"

_ICONS = {
    JobStatus.QUEUED: "⏳",
    JobStatus.RUNNING: "🎨",
    JobStatus.DONE: "✅",
    JobStatus.FAILED: "⚠️",
    JobStatus.CANCELLED: "✖️",
}


# Slack's limits: elements in one actions block, options in one select menu
MAX_BUTTONS = 25
MAX_OPTIONS = 100


def _button(text: str, action: str, thread_ts: str, arg: str = "", key: str = "") -> Block:
    # action ids must differ within a message: `key` tells same-action buttons apart
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": f"story_{action}:{key}" if key else f"story_{action}",
        "value": f"{thread_ts}|{arg}",
    }


def job_name(job: RenderJob) -> str:
    """What a job makes, in a few words: `page`, `clip`, `sheet`, `panel 3 redraw`."""
    if job.kind == JobKind.PANEL:
        return f"panel {job.first_position} redraw"
    return job.kind.value


def _section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def anchor(title: str, story_ts: str, author: str) -> tuple[str, list[Block]]:
    """The anchor message of a story (text fallback and blocks); its thread is the story."""
    text = f"📖 *{escape_slack(title)}* — a story by {escape_slack(author)}"
    hint = "Add beats in this thread with `@storyloom add …`, or with the button."
    buttons = [_button("Add a beat", "add", story_ts), _button("Render", "again", story_ts)]
    return text, [_section(text), _section(hint), {"type": "actions", "elements": buttons}]


def status_line(
    job: RenderJob,
    status: JobStatus,
    *,
    place: int | None = None,
    progress: JobProgress | None = None,
    error: str | None = None,
) -> str:
    """One line for a job: icon, kind, id, state and what is known of it now (its place in
    the queue while it waits, panel i of n, percent and time left while it renders, the
    error when it failed)."""
    line = f"{_ICONS[status]} {job_name(job)} job #{job.id} {status.value}"
    if status == JobStatus.QUEUED and place is not None:
        line += " · next in the queue" if place == 1 else f" · place {place} in the queue"
    if status == JobStatus.RUNNING and progress is not None:
        line += f" · {progress.describe()}"
    return f"{line} · {escape_slack(error)}" if error else line


def progress_bar(percent: int, width: int = 20) -> str:
    """`▰▰▰▱▱▱` for a percentage: the status message's bar."""
    filled = max(0, min(width, round(width * percent / 100)))
    return "▰" * filled + "▱" * (width - filled)


def status(
    job: RenderJob,
    status: JobStatus,
    thread_ts: str,
    *,
    place: int | None = None,
    progress: JobProgress | None = None,
    error: str | None = None,
) -> tuple[str, list[Block]]:
    """A job's status message: its line, a progress bar while it renders, and cancel while
    it is active, or when it is over render again / clip (a redrawn panel: redraw it again
    / render the page)."""
    line = status_line(job, status, place=place, progress=progress, error=error)
    shown = [_section(line)]
    if status == JobStatus.RUNNING and progress is not None:
        bar = f"`{progress_bar(progress.percent)}` {progress.percent}%"
        shown.append({"type": "context", "elements": [{"type": "mrkdwn", "text": bar}]})
    # the beats this job drew, by id: positions change when beats move
    again = f"j{job.id}" if job.beats else f"{job.first_position or ''}-{job.last_position or ''}"
    if status.active:
        buttons = [_button("Cancel", "cancel", thread_ts, str(job.id))]
    elif job.kind == JobKind.PANEL and job.beats:
        return line, [*shown, *after_redraw(thread_ts, job)]
    else:
        buttons = [
            _button("Render again", "again", thread_ts, again),
            _button("Clip", "clip", thread_ts, again),
        ]
    return line, [*shown, {"type": "actions", "elements": buttons}]


def look_buttons(thread_ts: str, character: str) -> list[Block]:
    """Under a character sheet: lock this look, or try another one."""
    return [
        {
            "type": "actions",
            "elements": [
                _button("Lock this look", "lock", thread_ts, character),
                _button("Try another look", "reroll", thread_ts, character),
            ],
        }
    ]


def _panels(job: RenderJob) -> list[tuple[str, int]]:
    """(argument, position shown) of each panel a job drew: its beat's id."""
    return [(f"b{beat.id}", beat.position) for beat in job.beats]


def redraw_panels(thread_ts: str, job: RenderJob) -> list[Block]:
    """Under a page: a "Redraw panel N" button per panel, or a menu of them on a long page
    (a longer one still has `/story redraw N`). They name beats by id."""
    panels = _panels(job)
    if len(panels) <= MAX_BUTTONS:
        buttons = [
            _button(f"Redraw panel {n}", "redraw", thread_ts, arg, key=arg) for arg, n in panels
        ]
        return [{"type": "actions", "elements": buttons}]
    options = [
        {"text": {"type": "plain_text", "text": f"Panel {n}"}, "value": f"{thread_ts}|{arg}"}
        for arg, n in panels[:MAX_OPTIONS]
    ]
    menu = {
        "type": "static_select",
        "action_id": "story_redraw",
        "placeholder": {"type": "plain_text", "text": "Redraw a panel…"},
        "options": options,
    }
    return [{"type": "actions", "elements": [menu]}]


def after_redraw(thread_ts: str, job: RenderJob) -> list[Block]:
    """Under a redrawn panel: draw it once more, or render the whole page with it."""
    [(arg, position), *_] = _panels(job)
    buttons = [
        _button(f"Redraw panel {position} again", "redraw", thread_ts, arg),
        _button("Render the page", "again", thread_ts, "-"),
    ]
    return [{"type": "actions", "elements": buttons}]


def add_beat_modal(channel_id: str, thread_ts: str) -> Block:
    """The modal the anchor's button opens; private_metadata names the story thread."""
    return {
        "type": "modal",
        "callback_id": ADD_BEAT_VIEW,
        "private_metadata": f"{channel_id}|{thread_ts}",
        "title": {"type": "plain_text", "text": "Add a beat"},
        "submit": {"type": "plain_text", "text": "Add"},
        "blocks": [
            {
                "type": "input",
                "block_id": "beat",
                "label": {"type": "plain_text", "text": "Beat"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "max_length": 500,
                    "placeholder": {
                        "type": "plain_text",
                        "text": '[Mira] opens the door # Mira: "Who is there?"',
                    },
                },
            }
        ],
    }
