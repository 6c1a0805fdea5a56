"""What a chat adapter implements to deliver job messages, and what it is handed.

The outbox (`jobs.delivery`) calls `show` with the passing changes of a job (its place,
its start, its progress: only the latest one counts) and `settle` with an owed outcome,
again and again until `settle` returns. A settle is made of named steps (edit the status
message, upload the result, …); each one made is recorded, so a retry skips it, and each
one begun is recorded before it reaches the platform, so a retry after a crash knows to
check whether it got there (`Owed.step`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from storyloom.jobs.events import JobEvent, Notify
from storyloom.story.model import RenderJob


class Retry(Exception):
    """The platform asked us to wait (429): this lane waits `after_s`, the others go on."""

    def __init__(self, after_s: float, why: str = "rate limited") -> None:
        super().__init__(f"{why}; retry after {after_s:.1f} s")
        self.after_s = after_s


class Undeliverable(Exception):
    """The platform will never take this (the channel is gone, the bot was removed)."""


# (step name, whether it was begun before without being recorded as made)
Step = Callable[[bool], Awaitable[None]]


@dataclass
class Owed:
    """One job's outcome to deliver: the job as it ended and its files on this machine."""

    job: RenderJob
    files: tuple[Path, ...]
    done: frozenset[str]
    started: frozenset[str]
    _begin: Callable[[str], Awaitable[None]]
    _finish: Callable[[str], Awaitable[None]]

    @property
    def event(self) -> JobEvent:
        """The outcome as a job event."""
        return JobEvent(self.job, self.job.status, self.files, self.job.error)

    async def step(self, name: str, make: Step) -> None:
        """Make a step once: skipped if made; `make(retried)` learns whether an earlier
        try began it (it may have reached the platform: check before doing it again)."""
        if name in self.done:
            return
        retried = name in self.started
        if not retried:
            await self._begin(name)
            self.started = self.started | {name}
        await make(retried)
        await self._finish(name)
        self.done = self.done | {name}


class Courier(Protocol):
    """A chat adapter's side of the outbox."""

    async def show(self, event: JobEvent) -> None:
        """Show a passing change (raise `Retry` when rate limited)."""
        ...

    async def settle(self, owed: Owed) -> None:
        """Deliver an outcome through `owed.step`s; raise `Retry`, `Undeliverable`, or any
        error (tried again later, with backoff)."""
        ...


@dataclass
class CallbackCourier:
    """A plain notify callback as a courier (the console, tests): the outcome is one step."""

    notify: Notify

    async def show(self, event: JobEvent) -> None:
        await self.notify(event)

    async def settle(self, owed: Owed) -> None:
        async def report(retried: bool) -> None:
            await self.notify(owed.event)

        await owed.step("report", report)


def as_courier(target: Courier | Notify) -> Courier:
    """A courier as given, or a notify callback wrapped as one."""
    if isinstance(target, CallbackCourier) or hasattr(target, "settle"):
        return target  # type: ignore[return-value]
    return CallbackCourier(target)
