"""Buttons that still work after a restart: their whole state is in the custom_id.

`DynamicItem` templates are registered once in `setup_hook`; pressing one runs the same
service use case as the slash command, so permissions are the core's (a member who may
not cancel a job gets the core's sentence).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from storyloom.story.model import JobKind, JobStatus, RenderJob

# (interaction, action, argument): runs the use case a button stands for
PressHandler = Callable[[discord.Interaction[Any], str, str], Awaitable[None]]
ACTIONS = ("again", "clip", "cancel", "lock", "reroll", "redraw")
MAX_ROWS = 5  # Discord: at most 5 rows of at most 5 buttons under a message
PER_ROW = 5
# a page's first row holds render again / make a clip; the other rows redraw its panels
MAX_PANEL_BUTTONS = (MAX_ROWS - 1) * PER_ROW


class StoryButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"story:(?P<action>again|clip|cancel|lock|reroll|redraw):(?P<arg>[^:]{0,64})",
):
    """A button carrying (action, argument): a job id, a beat range, a beat's position or a
    character's name."""

    def __init__(
        self,
        action: str,
        arg: str,
        label: str,
        style: discord.ButtonStyle,
        row: int | None = None,
    ) -> None:
        super().__init__(
            discord.ui.Button(label=label, style=style, custom_id=f"story:{action}:{arg}", row=row)
        )
        self.action = action
        self.arg = arg

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> StoryButton:
        action, arg = match["action"], match["arg"]
        label = getattr(item, "label", None) or action
        return cls(action, arg, label, getattr(item, "style", discord.ButtonStyle.secondary))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        on_press: PressHandler | None = getattr(interaction.client, "on_press", None)
        assert on_press is not None, "the /story cog sets the bot's on_press when it loads"
        await on_press(interaction, self.action, self.arg)


def _span(job: RenderJob) -> str:
    return f"{job.first_position or ''}-{job.last_position or ''}"


def job_buttons(job: RenderJob, status: JobStatus) -> discord.ui.View:
    """Under a job's status: cancel while it waits or runs. Once done, the result post
    carries the buttons; a page, clip or panel that failed or was cancelled can be asked
    for again."""
    view = discord.ui.View(timeout=None)
    if status.active:
        view.add_item(StoryButton("cancel", str(job.id), "Cancel", discord.ButtonStyle.danger))
    elif status != JobStatus.DONE:
        again = {
            JobKind.PAGE: ("again", _span(job), "Render again"),
            JobKind.CLIP: ("clip", _span(job), "Make a clip"),
            JobKind.PANEL: (
                "redraw",
                str(job.first_position),
                f"Redraw panel {job.first_position}",
            ),
        }.get(job.kind)
        if again is not None:
            action, arg, label = again
            view.add_item(StoryButton(action, arg, label, discord.ButtonStyle.primary))
    return view


def result_buttons(job: RenderJob, character: str | None = None) -> discord.ui.View:
    """Under a result: a sheet's lock / try another; a page's render again, make a clip and
    one redraw button per panel; a clip's make another; a redrawn panel's redraw again."""
    if job.kind in (JobKind.SHEET, JobKind.REROLL):
        return look_buttons(character) if character else discord.ui.View(timeout=None)
    view = discord.ui.View(timeout=None)
    if job.kind == JobKind.CLIP:
        view.add_item(StoryButton("clip", _span(job), "Make another", discord.ButtonStyle.primary))
        return view
    if job.kind == JobKind.PAGE:
        span = _span(job)
        view.add_item(StoryButton("again", span, "Render again", discord.ButtonStyle.primary, 0))
        view.add_item(StoryButton("clip", span, "Make a clip", discord.ButtonStyle.secondary, 0))
        first, last = job.first_position, job.last_position
        if first is not None and last is not None:
            for number, position in enumerate(range(first, last + 1)):
                if number >= MAX_PANEL_BUTTONS:
                    break  # the rest: /story redraw
                row = 1 + number // PER_ROW
                label = f"Redraw panel {position}"
                style = discord.ButtonStyle.secondary
                view.add_item(StoryButton("redraw", str(position), label, style, row))
        return view
    if job.kind == JobKind.PANEL:  # one redrawn panel: again, or the whole page with it
        beat = str(job.first_position or "")
        label = f"Redraw panel {beat} again"
        view.add_item(StoryButton("redraw", beat, label, discord.ButtonStyle.primary))
        view.add_item(StoryButton("again", "-", "Render the page", discord.ButtonStyle.secondary))
    return view


def look_buttons(name: str) -> discord.ui.View:
    """Under a character sheet: lock this look, or try another."""
    view = discord.ui.View(timeout=None)
    view.add_item(StoryButton("lock", name, "Lock this look", discord.ButtonStyle.success))
    view.add_item(StoryButton("reroll", name, "Try another look", discord.ButtonStyle.secondary))
    return view
