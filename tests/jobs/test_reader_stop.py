"""A worker's queue reader ends soon after a stop even when the cancel of its blocked read
is lost. redis-py did that now and then (a cancelled XREADGROUP returned its empty read:
5 of 300 cancels in one try), and taskiq's reader then read on until a message came:
an idle `storyloom worker` took the next no-op (30 s by default) to stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from taskiq import AsyncBroker
from taskiq.message import BrokerMessage

from storyloom.jobs.broker import register_tasks
from storyloom.jobs.worker_main import serve

READ_BLOCK_S = 0.05


class CancelLosingBroker(AsyncBroker):
    """A queue whose blocked read loses every cancel (while `losing`): it returns empty."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: asyncio.Queue[bytes] = asyncio.Queue()
        self.lost_cancels = 0
        self.losing = True
        register_tasks(self)

    async def kick(self, message: BrokerMessage) -> None:
        await self.messages.put(message.message)

    async def listen(self) -> AsyncGenerator[bytes, None]:
        while True:
            try:
                async with asyncio.timeout(READ_BLOCK_S):
                    message: bytes | None = await self.messages.get()
            except TimeoutError:
                message = None
            except asyncio.CancelledError:
                if not self.losing:
                    raise
                self.lost_cancels += 1
                message = None
            if message is not None:
                yield message


async def test_a_stopped_reader_that_lost_its_cancel_ends_within_seconds() -> None:
    broker = CancelLosingBroker()
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(broker, stop, noop_every_s=600.0))
    await asyncio.sleep(0.3)  # reading, nothing queued
    stop.set()
    # without the no-ops sent from the stop on, the next message would be 600 s away
    done, _ = await asyncio.wait([serving], timeout=10)
    broker.losing = False  # from here a cancel ends it, whatever the outcome
    if not done:
        serving.cancel()
        await asyncio.wait([serving], timeout=10)
    assert done, "the stopped reader still read 10 s after the stop"
    serving.result()
    assert broker.lost_cancels >= 1  # the stop came through the lost-cancel path
