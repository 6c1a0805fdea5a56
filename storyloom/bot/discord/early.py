"""Interactions that arrive while the bot is still being built (start.py).

Discord gives an interaction 3 s to be acknowledged, and building the bot (SQLAlchemy,
Alembic, the cogs, the job runtime) takes longer on a busy host. So from the first
connection on, an interaction is acknowledged here at once, as its handler would (a
private deferral; a button press: a deferred update; an autocomplete: no suggestions yet),
and kept. Once the bot is built (`hand_over`) the kept ones go to their handlers one after
another, in the order they came, marked as acknowledged; then every later one goes straight
to discord.py (as Slack's early port does: bot/slack/front.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import discord
from discord import app_commands
from discord.enums import InteractionResponseType
from discord.http import Route

log = logging.getLogger(__name__)

APPLICATION_COMMAND, COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
EPHEMERAL = 1 << 6


def early_answer(kind: int) -> dict[str, Any]:
    """The acknowledgement an interaction of this type gets before the bot is built: what
    its handler would have sent first (see `context.defer` and the button handler)."""
    if kind == AUTOCOMPLETE:
        return {"type": InteractionResponseType.autocomplete_result.value, "data": {"choices": []}}
    if kind in (COMPONENT, MODAL_SUBMIT):  # a press defers an update of its message
        return {"type": InteractionResponseType.deferred_message_update.value}
    return {  # a slash command: privately, as every handler defers (cog.py)
        "type": InteractionResponseType.deferred_channel_message.value,
        "data": {"flags": EPHEMERAL},
    }


class EarlyInteractions:
    """Acknowledges and keeps interactions until the bot is built."""

    def __init__(self, bot: discord.Client) -> None:
        self._bot = bot
        self._state = bot._connection
        self._kept: list[tuple[dict[str, Any], asyncio.Task[bool]]] = []
        self._handle: Callable[[Any], None] = self._state.parsers["INTERACTION_CREATE"]
        self._state.parsers["INTERACTION_CREATE"] = self._keep

    @property
    def kept(self) -> int:
        """Interactions acknowledged and not yet handed to their handlers."""
        return len(self._kept)

    def _keep(self, data: Any) -> None:
        kind = int(data["type"])
        acked = asyncio.create_task(self._acknowledge(data, early_answer(kind)))
        self._kept.append((data, acked))

    async def _acknowledge(self, data: dict[str, Any], answer: dict[str, Any]) -> bool:
        route = Route(
            "POST",
            "/interactions/{interaction_id}/{interaction_token}/callback",
            interaction_id=data["id"],
            interaction_token=data["token"],
        )
        try:
            await self._bot.http.request(route, json=answer)
        except discord.HTTPException as error:  # its handler will try again, and report
            log.warning("could not acknowledge interaction %s: %s", data["id"], error.text)
            return False
        return True

    async def hand_over(self) -> None:
        """The bot is built: run the kept interactions' handlers one after another, in the
        order they came (a beat added right after `/story new` needs the story), each once
        its acknowledgement is through (a follow-up may not overtake it). What arrives
        meanwhile is kept too; from then on discord.py handles every interaction itself."""
        if self._kept:
            log.info("handling %d interactions acknowledged while the bot started", self.kept)
        while self._kept:
            data, acked = self._kept.pop(0)
            try:
                await self._handle_kept(data, await acked)
            except Exception:  # one member's failure must not leave the bot deaf
                log.exception("interaction %s, kept while the bot started, failed", data["id"])
        # no await between the last kept one and this: nothing can overtake it
        self._state.parsers["INTERACTION_CREATE"] = self._handle

    async def _handle_kept(self, data: dict[str, Any], acknowledged: bool) -> None:
        """What discord.py does with an INTERACTION_CREATE (`parse_interaction_create`), for
        an interaction acknowledged already; a slash command is awaited to its end."""
        kind = int(data["type"])
        if kind == AUTOCOMPLETE:
            return  # answered already (no suggestions); the member types on
        state = self._state
        interaction: discord.Interaction[Any] = discord.Interaction(
            data=data,  # type: ignore[arg-type]  # discord.py's own payload, as it came
            state=state,
        )
        if acknowledged:
            answer = InteractionResponseType(early_answer(kind)["type"])
            interaction.response._response_type = answer
        tree = state._command_tree
        if kind == APPLICATION_COMMAND and tree is not None:
            try:
                await tree._call(interaction)
            except app_commands.AppCommandError as error:
                await tree._dispatch_error(interaction, error)
        elif kind == COMPONENT:  # the button's callback runs as a task of its own
            inner = data["data"]
            state._view_store.dispatch_view(inner["component_type"], inner["custom_id"],
                                            interaction)  # fmt: skip
        elif kind == MODAL_SUBMIT:
            inner = data["data"]
            state._view_store.dispatch_modal(inner["custom_id"], interaction, inner["components"],
                                             inner.get("resolved", {}))  # fmt: skip
        state.dispatch("interaction", interaction)
