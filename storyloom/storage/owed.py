"""The outbox's SQL: outcomes owed to members, written with the job's `posted` mark and
delivered (step by step, each step recorded) until done or known impossible."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storyloom.storage.tables import OwedMessageRow

PENDING, DELIVERED, IMPOSSIBLE = "pending", "delivered", "impossible"
# a message whose delivery failed this often (not counting rate limits) is "failing":
# still retried, and shown in /metrics and the log
FAILING_AFTER = 3


def _steps(text: str) -> frozenset[str]:
    return frozenset(part for part in text.split(",") if part)


def _text(steps: frozenset[str]) -> str:
    return ",".join(sorted(steps))


@dataclass(frozen=True)
class OwedRow:
    """One owed outcome as the delivery reads it."""

    id: int
    job_id: int
    workspace_id: str
    lane: str
    state: str
    done: frozenset[str]
    started: frozenset[str]
    attempts: int


def _value(row: OwedMessageRow) -> OwedRow:
    return OwedRow(
        row.id,
        row.job_id,
        row.workspace_id,
        row.lane,
        row.state,
        _steps(row.done),
        _steps(row.started),
        row.attempts,
    )


async def owe(
    session: AsyncSession, job_id: int, workspace_id: str, lane: str, now: datetime
) -> None:
    """Record the outcome of a job as owed (in the transaction that marks it reported)."""
    session.add(
        OwedMessageRow(
            job_id=job_id,
            workspace_id=workspace_id,
            lane=lane,
            state=PENDING,
            done="",
            started="",
            attempts=0,
            next_try_at=now,
            created_at=now,
        )
    )
    await session.flush()


async def due(session: AsyncSession, now: datetime, limit: int = 500) -> Sequence[OwedRow]:
    """Pending messages whose time has come, oldest first."""
    query = (
        select(OwedMessageRow)
        .where(OwedMessageRow.state == PENDING, OwedMessageRow.next_try_at <= now)
        .order_by(OwedMessageRow.id)
        .limit(limit)
    )
    return [_value(row) for row in (await session.execute(query)).scalars()]


async def get(session: AsyncSession, owed_id: int) -> OwedRow | None:
    """One owed message, fresh from the database."""
    row = await session.get(OwedMessageRow, owed_id, populate_existing=True)
    return None if row is None else _value(row)


async def _locked(session: AsyncSession, owed_id: int) -> OwedMessageRow | None:
    query = select(OwedMessageRow).where(OwedMessageRow.id == owed_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def begin_step(session: AsyncSession, owed_id: int, step: str) -> None:
    """Record that a step is about to reach the platform (so a retry checks first)."""
    row = await _locked(session, owed_id)
    if row is not None:
        row.started = _text(_steps(row.started) | {step})


async def finish_step(session: AsyncSession, owed_id: int, step: str) -> None:
    """Record a step as made."""
    row = await _locked(session, owed_id)
    if row is not None:
        row.done = _text(_steps(row.done) | {step})


async def delivered(
    session: AsyncSession, owed: OwedRow, done: frozenset[str], now: datetime
) -> bool:
    """Mark the message delivered if its steps are still those the delivery made (a status
    message found since, see `reopen`, leaves it pending); whether it was."""
    result = await session.execute(
        update(OwedMessageRow)
        .where(
            OwedMessageRow.id == owed.id,
            OwedMessageRow.state == PENDING,
            OwedMessageRow.done == _text(done),
        )
        .values(state=DELIVERED, delivered_at=now, last_error=None)
    )
    return cast(CursorResult[Any], result).rowcount == 1


async def retry_at(
    session: AsyncSession, owed_id: int, at: datetime, error: str, *, failed: bool
) -> int:
    """Try again at `at`; a failure (not a rate limit) counts an attempt. The attempts."""
    row = await _locked(session, owed_id)
    if row is None:
        return 0
    row.next_try_at = at
    row.last_error = error[:300]
    if failed:
        row.attempts += 1
    return row.attempts


async def impossible(session: AsyncSession, owed_id: int, error: str, now: datetime) -> None:
    """Stop: the platform says this cannot be delivered (message deleted, bot removed)."""
    await session.execute(
        update(OwedMessageRow)
        .where(OwedMessageRow.id == owed_id)
        .values(state=IMPOSSIBLE, last_error=error[:300], delivered_at=now)
    )


async def reopen(session: AsyncSession, job_id: int, step: str, now: datetime) -> None:
    """A step is to be made again (the job's status message became known after its outcome
    was delivered: it must still end in the outcome)."""
    row = (
        await session.execute(
            select(OwedMessageRow).where(OwedMessageRow.job_id == job_id).with_for_update()
        )
    ).scalar_one_or_none()
    if row is None or row.state == IMPOSSIBLE:
        return
    row.done = _text(_steps(row.done) - {step})
    row.state = PENDING
    row.next_try_at = now


async def owed_counts(connection: AsyncConnection) -> dict[str, int]:
    """Owed messages by state, with `failing`: pending ones that failed repeatedly."""
    counts = dict.fromkeys((PENDING, DELIVERED, IMPOSSIBLE, "failing"), 0)
    rows = await connection.execute(
        select(OwedMessageRow.state, func.count()).group_by(OwedMessageRow.state)
    )
    for state, count in rows:
        counts[str(state)] = int(count)
    counts["failing"] = int(
        await connection.scalar(
            select(func.count()).where(
                OwedMessageRow.state == PENDING, OwedMessageRow.attempts >= FAILING_AFTER
            )
        )
        or 0
    )
    return counts
