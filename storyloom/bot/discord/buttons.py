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

ACTIONS = ("again", "clip", "cancel", "lock", "reroll")


class StoryButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"story:(?P<action>again|clip|cancel|lock|reroll):(?P<arg>[^:]{0,64})",
):
    """A button carrying (action, argument): a job id, a beat range or a character name."""

    def __init__(self, action: str, arg: str, label: str, style: discord.ButtonStyle) -> None:
        super().__init__(
            discord.ui.Button(label=label, style=style, custom_id=f"story:{action}:{arg}")
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


def job_buttons(job: RenderJob, *, done: bool) -> discord.ui.View:
    """Buttons under a job's status: cancel while it runs; render again / clip when done."""
    view = discord.ui.View(timeout=None)
    span = f"{job.first_position or ''}-{job.last_position or ''}"
    if not done:
        view.add_item(StoryButton("cancel", str(job.id), "Cancel", discord.ButtonStyle.danger))
        return view
    if job.kind in (JobKind.SHEET, JobKind.REROLL):
        return view  # a finished sheet's buttons (lock / try another) are on its result post
    view.add_item(StoryButton("again", span, "Render again", discord.ButtonStyle.primary))
    view.add_item(StoryButton("clip", span, "Make a clip", discord.ButtonStyle.secondary))
    return view


def look_buttons(name: str) -> discord.ui.View:
    """Under a character sheet: lock this look, or try another."""
    view = discord.ui.View(timeout=None)
    view.add_item(StoryButton("lock", name, "Lock this look", discord.ButtonStyle.success))
    view.add_item(StoryButton("reroll", name, "Try another look", discord.ButtonStyle.secondary))
    return view
