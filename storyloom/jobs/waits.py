"""Waiting on an event with a time limit, without swallowing a cancel.

Python 3.11's `asyncio.wait_for` returns the inner result when the waiting task is
cancelled in the same loop turn as the inner awaitable finishes: the cancel is lost, and a
loop that waits this way (`while True: ... wait_for(event.wait(), t)`) never stops, so
whoever awaits its task after cancelling it hangs. `asyncio.timeout` counts cancels and
re-raises ours; every timed wait in jobs/ goes through here.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until `event` is set or `timeout_s` passed; whether it was set."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
