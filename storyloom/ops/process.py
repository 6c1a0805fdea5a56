"""Run one storyloom process: its work, the operations server beside it, and SIGTERM.

A bot's work is cancelled on SIGTERM or SIGINT, so its `finally` and `async with` blocks
close the chat connection and the database before the process exits 0 (a container stop
or a Ctrl-C is not a crash). A worker handles the signals itself (`shutdown.GracefulStop`),
since it must first finish or hand back its job: it passes `own_signals=False`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from storyloom.config import Settings
from storyloom.ops.server import Ops, ops_server

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_service(
    settings: Settings,
    role: str,
    work: Callable[[Ops], Coroutine[Any, Any, None]],
    *,
    own_signals: bool = True,
    ready_at_start: bool = True,
) -> None:
    """Run `work(ops)` with /healthz and /metrics served; stop cleanly on a signal.
    Without `ready_at_start`, `work` says when it is ready (`Ops.set_ready`)."""
    async with ops_server(settings, role) as ops:
        task = asyncio.create_task(work(ops))
        loop = asyncio.get_running_loop()

        def stop() -> None:
            log.info("%s: stop signal received; shutting down", role)
            ops.stopping = True
            task.cancel()

        if own_signals:
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, stop)
            ops.ready = ready_at_start
        try:
            await task
        except asyncio.CancelledError:
            if not ops.stopping:
                raise  # cancelled from outside, not by our signal: not ours to swallow
            log.info("%s stopped", role)
        finally:
            if own_signals:
                for sig in STOP_SIGNALS:
                    loop.remove_signal_handler(sig)
