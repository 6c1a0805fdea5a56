"""Buttons that still work after a restart: their whole state is in the custom_id.

`DynamicItem` templates are registered once in `setup_hook`; pressing one runs the same
service use case as the slash command, so permissions are the core's (a member who may
not cancel a job gets the core's sentence).
"""

from __future__ import annotations

import re
from typing import Any

import discord

from storyloom.story.model import JobKind, RenderJob

ACTIONS = ("again", "clip", "cancel", "lock", "reroll", "panel")
MAX_ROWS = 5  # Discord: at most 5 rows of at most 5 buttons under a message
PER_ROW = 5
# a page's first row holds render again / make a clip; the other rows re-roll its panels
MAX_PANEL_BUTTONS = (MAX_ROWS - 1) * PER_ROW


class StoryButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"story:(?P<action>again|clip|cancel|lock|reroll|panel):(?P<arg>[^:]{0,64})",
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
        from storyloom.bot.discord.cog import press

        await press(interaction, self.action, self.arg)


def _span(job: RenderJob) -> str:
    return f"{job.first_position or ''}-{job.last_position or ''}"


def job_buttons(job: RenderJob, *, done: bool) -> discord.ui.View:
    """Under a job's status: cancel while it waits or runs. Once it ended the result post
    carries the buttons; a page or clip that failed or was cancelled can be asked again."""
    view = discord.ui.View(timeout=None)
    if not done:
        view.add_item(StoryButton("cancel", str(job.id), "Cancel", discord.ButtonStyle.danger))
    elif job.kind in (JobKind.PAGE, JobKind.CLIP):
        label = "Render again" if job.kind == JobKind.PAGE else "Make a clip"
        action = "again" if job.kind == JobKind.PAGE else "clip"
        view.add_item(StoryButton(action, _span(job), label, discord.ButtonStyle.primary))
    return view


def result_buttons(job: RenderJob, character: str | None = None) -> discord.ui.View:
    """Under a result: a sheet's lock / try another; a page's render again, make a clip and
    one re-roll button per panel; a clip's make another."""
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
                    break  # the rest: /story reroll-panel
                row = 1 + number // PER_ROW
                label = f"Re-roll panel {position}"
                view.add_item(
                    StoryButton("panel", str(position), label, discord.ButtonStyle.secondary, row)
                )
        return view
    # one re-rolled panel (JobKind.PANEL): again, or the page it belongs in
    position = str(job.first_position or "")
    view.add_item(StoryButton("panel", position, "Re-roll this panel", discord.ButtonStyle.primary))
    view.add_item(StoryButton("again", "-", "Render the page", discord.ButtonStyle.secondary))
    return view


def look_buttons(name: str) -> discord.ui.View:
    """Under a character sheet: lock this look, or try another."""
    view = discord.ui.View(timeout=None)
    view.add_item(StoryButton("lock", name, "Lock this look", discord.ButtonStyle.success))
    view.add_item(StoryButton("reroll", name, "Try another look", discord.ButtonStyle.secondary))
    return view
