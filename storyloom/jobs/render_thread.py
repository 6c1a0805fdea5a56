"""A render on a thread of its own, which the event loop can stop waiting for.

`asyncio.to_thread` cannot be abandoned: a render that never returns (a stuck driver, an
endless loop in a job) holds the worker for good, and its pool thread keeps the process
from exiting. A StopIteration raised in it is worse: asyncio refuses to put it into a
future (TypeError in a callback), so the awaiting code never resumes at all.

Here the render runs on a daemon thread (it never blocks the process's exit), its outcome
reaches the loop with `call_soon_threadsafe`, and a StopIteration arrives as a RuntimeError
that names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def start_in_thread(work: Callable[[], T], name: str) -> asyncio.Future[T]:
    """Run `work()` on a new daemon thread; its result or error, as a future of this loop."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if outcome.done():  # the loop gave up on it (cancelled): nobody listens
            return
        if error is None:
            outcome.set_result(result)  # type: ignore[arg-type]
        else:
            outcome.set_exception(error)

    def run() -> None:
        try:
            result = work()
        except StopIteration as stop:  # not allowed into a future: see the module docstring
            error = RuntimeError(f"a job step ended with StopIteration ({stop!r})")
            error.__cause__ = stop
            _deliver(loop, settle, None, error)
        except BaseException as error:  # the loop decides what it means
            _deliver(loop, settle, None, error)
        else:
            _deliver(loop, settle, result, None)

    threading.Thread(target=run, name=name, daemon=True).start()
    return outcome


def _deliver(
    loop: asyncio.AbstractEventLoop,
    settle: Callable[[T | None, BaseException | None], None],
    result: T | None,
    error: BaseException | None,
) -> None:
    # a closed loop: the process is stopping, nobody waits for this outcome
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle, result, error)
