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
    """A button carrying (action, argument): a job id (`j12`: the beats that job drew), a
    beat id (`b34`), a character's name, or `-` (the whole story)."""

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


def again_arg(job: RenderJob) -> str:
    """What "render again" / "make a clip" under a job acts on: that job's beats (by id,
    wherever they are now), never positions, which change when beats move."""
    return f"j{job.id}"


def panels(job: RenderJob) -> list[tuple[str, int]]:
    """(button argument, position shown) of each panel a job drew: the beat's id."""
    return [(f"b{beat.id}", beat.position) for beat in job.beats]


def job_buttons(job: RenderJob, status: JobStatus) -> discord.ui.View:
    """Under a job's status: cancel while it waits or runs. Once done, the result post
    carries the buttons; a page, clip or panel that failed or was cancelled can be asked
    for again."""
    view = discord.ui.View(timeout=None)
    if status.active:
        view.add_item(StoryButton("cancel", str(job.id), "Cancel", discord.ButtonStyle.danger))
    elif status != JobStatus.DONE:
        again: tuple[str, str, str] | None = {
            JobKind.PAGE: ("again", again_arg(job), "Render again"),
            JobKind.CLIP: ("clip", again_arg(job), "Make a clip"),
        }.get(job.kind)
        if job.kind == JobKind.PANEL and (drawn := panels(job)):
            arg, position = drawn[0]
            again = ("redraw", arg, f"Redraw panel {position}")
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
    arg = again_arg(job)
    if job.kind == JobKind.CLIP:
        view.add_item(StoryButton("clip", arg, "Make another", discord.ButtonStyle.primary))
        return view
    if job.kind == JobKind.PAGE:
        view.add_item(StoryButton("again", arg, "Render again", discord.ButtonStyle.primary, 0))
        view.add_item(StoryButton("clip", arg, "Make a clip", discord.ButtonStyle.secondary, 0))
        for number, (beat, position) in enumerate(panels(job)[:MAX_PANEL_BUTTONS]):
            row = 1 + number // PER_ROW  # the rest: /story redraw
            label = f"Redraw panel {position}"
            view.add_item(StoryButton("redraw", beat, label, discord.ButtonStyle.secondary, row))
        return view
    if job.kind == JobKind.PANEL and (drawn := panels(job)):
        beat, position = drawn[0]
        label = f"Redraw panel {position} again"
        view.add_item(StoryButton("redraw", beat, label, discord.ButtonStyle.primary))
        view.add_item(StoryButton("again", "-", "Render the page", discord.ButtonStyle.secondary))
    return view


def look_buttons(name: str) -> discord.ui.View:
    """Under a character sheet: lock this look, or try another."""
    view = discord.ui.View(timeout=None)
    view.add_item(StoryButton("lock", name, "Lock this look", discord.ButtonStyle.success))
    view.add_item(StoryButton("reroll", name, "Try another look", discord.ButtonStyle.secondary))
    return view
