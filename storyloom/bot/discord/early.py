"""Interactions that arrive while the bot is still being built (start.py).

Discord gives an interaction 3 s to be acknowledged, and building the bot (SQLAlchemy,
Alembic, the cogs, the job runtime) takes longer on a busy host. So from the first
connection on, an interaction is acknowledged here at once, as its handler would (a
private deferral; a button press: a deferred update; an autocomplete: no suggestions yet),
and kept. Once the bot is built (`hand_over`) the kept ones go to their handlers in the
order they came, marked as acknowledged, and every later one goes straight to discord.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import discord
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
        self.acknowledged = 0  # interactions acknowledged here (the metrics may read it)

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
        self.acknowledged += 1
        return True

    async def hand_over(self) -> None:
        """The bot is built: hand the kept interactions to their handlers, in order, once
        each acknowledgement is through (a follow-up may not overtake it); from then on
        discord.py handles every interaction itself."""
        while pending := [acked for _, acked in self._kept if not acked.done()]:
            await asyncio.wait(pending)  # more may arrive meanwhile: they are kept too
        kept, self._kept = self._kept, []
        # no await from here on: nothing arrives between the kept ones and the later ones
        self._state.parsers["INTERACTION_CREATE"] = self._handle
        if kept:
            log.info("handling %d interactions acknowledged while the bot started", len(kept))
        for data, acked in kept:
            kind = int(data["type"])
            if kind == AUTOCOMPLETE:
                continue  # answered already (no suggestions); the member types on
            interaction: discord.Interaction[Any] = discord.Interaction(
                data=data, state=self._state
            )
            if acked.result():
                answer = InteractionResponseType(early_answer(kind)["type"])
                interaction.response._response_type = answer
            self._dispatch(interaction, data)

    def _dispatch(self, interaction: discord.Interaction[Any], data: dict[str, Any]) -> None:
        """What discord.py does with an INTERACTION_CREATE (`parse_interaction_create`),
        for an interaction already built and acknowledged."""
        state = self._state
        kind = int(data["type"])
        if kind == APPLICATION_COMMAND and state._command_tree is not None:
            state._command_tree._from_interaction(interaction)
        elif kind == COMPONENT:
            inner = data["data"]
            state._view_store.dispatch_view(inner["component_type"], inner["custom_id"],
                                            interaction)  # fmt: skip
        elif kind == MODAL_SUBMIT:
            inner = data["data"]
            state._view_store.dispatch_modal(inner["custom_id"], interaction, inner["components"],
                                             inner.get("resolved", {}))  # fmt: skip
        state.dispatch("interaction", interaction)
