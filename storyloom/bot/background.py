"""What both bots' early start shares: importing the heavy modules while the chat side
already answers (Slack's port, Discord's gateway)."""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType


async def imported(name: str) -> ModuleType:
    """Import a module on a thread: the loop goes on answering meanwhile."""
    return await asyncio.to_thread(importlib.import_module, name)
