"""Group commit for beats on SQLite: adds that arrive together share one transaction.

Why: members add beats far more often than they do anything else, all at once in a busy
thread, and SQLite has one writer. Through the async driver every statement is a hop to
the driver's thread and back (~0.3 ms), so an add done as its own transaction (BEGIN,
story, cast, count, insert, COMMIT) costs ~2 ms of hops and caps a database near 500 adds
a second; 200 members adding back to back would then wait ~0.4 s each.

How:
1. `append` puts the request on a list and waits for its own future.
2. One flusher task takes everything waiting (up to `MAX_BATCH`) when it gets the
   database's write turn, and hands it to a dedicated thread that owns a plain (sync)
   connection: the whole transaction is one hop, whatever its size.
3. On that thread, one `BEGIN IMMEDIATE` … `COMMIT` for the batch. Each story is read once
   (story, cast, beat count); each request is judged by the core's `admit` against the
   story as it stands after the requests before it, then inserted at count + 1.
4. Futures are resolved only after COMMIT returned, so a caller holding a beat holds a
   committed one (the connection runs `synchronous=FULL`: one fsync per batch, not per
   beat). While one batch is written, the next one gathers: no timers, no waiting for
   company when the database is idle.

Failures stay with their owner. A refused beat (a domain error from `admit`) writes
nothing. A failed insert is undone by SQLite alone (a statement is atomic), the batch
goes on and that caller gets the error. A failure that ends the whole transaction
(`RAISE(ROLLBACK)`, a full disk) takes the batch's earlier inserts with it: the failing
request gets the error and the others are written again in a fresh transaction. If
BEGIN or COMMIT fails, nothing of the batch stands and every request in it gets the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from storyloom.storage.repositories import _character, _story, beat_by_request, beat_value
from storyloom.storage.tables import BeatRow, CharacterRow, StoryRow
from storyloom.story.model import Beat, Character, Story, ThreadKey
from storyloom.story.ports import AdmitBeat, NewBeat

# Bounds how long one transaction holds SQLite's write lock (other processes wait on it).
MAX_BATCH = 256

Outcome = Beat | Exception

# Built once: building a statement costs more than running it on this path.
_FIND_STORY = select(StoryRow).where(
    StoryRow.workspace_id == bindparam("workspace"),
    StoryRow.channel_id == bindparam("channel"),
    StoryRow.thread_id == bindparam("thread"),
)
_CAST = select(CharacterRow).where(CharacterRow.story_id == bindparam("story"))
_CAST = _CAST.order_by(CharacterRow.id)
_COUNT = select(func.count()).select_from(BeatRow).where(BeatRow.story_id == bindparam("story"))
_INSERT = insert(BeatRow)


@dataclass
class _Request:
    beat: NewBeat
    admit: AdmitBeat
    result: asyncio.Future[Beat]


@dataclass
class _StoryState:
    story: Story | None
    cast: Sequence[Character]
    count: int


class _TransactionLost(Exception):
    """SQLite rolled the whole transaction back under us (not just one statement)."""

    def __init__(self, untried: list[int]) -> None:
        super().__init__("transaction rolled back")
        self.untried = untried


@dataclass
class _Batch:
    requests: Sequence[_Request]
    outcomes: list[Outcome | None] = field(init=False)

    def __post_init__(self) -> None:
        self.outcomes = [None] * len(self.requests)


class BeatWriter:
    """Appends beats to one SQLite file in group commits, on one dedicated thread."""

    def __init__(self, engine: Engine, write_turn: asyncio.Lock) -> None:
        self._engine = engine
        # Shared with the database's other writers, so batches queue behind them in order.
        self._write_turn = write_turn
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="storyloom-beat-writer")
        self._connection: Connection | None = None
        self._waiting: list[_Request] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    async def append(self, beat: NewBeat, admit: AdmitBeat) -> Beat:
        """Append the beat with whatever else is waiting; returns once it is committed."""
        if self._closed:
            raise RuntimeError("the database is closed; open it again to add beats")
        request = _Request(beat, admit, asyncio.get_running_loop().create_future())
        self._waiting.append(request)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await request.result

    async def close(self) -> None:
        """Finish the batches under way, then close the connection and the thread."""
        if self._closed:
            return
        self._closed = True
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        await asyncio.get_running_loop().run_in_executor(self._thread, self._disconnect)
        self._thread.shutdown()

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                async with self._write_turn:
                    # Callers that gave up before their turn are not written at all.
                    live = [r for r in self._waiting if not r.result.done()]
                    taken, self._waiting = live[:MAX_BATCH], live[MAX_BATCH:]
                    try:
                        outcomes = await loop.run_in_executor(self._thread, self._write, taken)
                    except BaseException as error:
                        # A bug or a cancelled flusher: no caller may wait forever.
                        for request in taken:
                            _settle(request, RuntimeError(
                                f"the beat writer stopped mid-batch ({error!r}); this beat "
                                "may or may not be saved"))  # fmt: skip
                        raise
                for request, outcome in zip(taken, outcomes, strict=True):
                    _settle(request, outcome)
        finally:
            self._flusher = None
            for request in self._waiting:
                _settle(request, RuntimeError("beat not saved: the beat writer stopped"))
            self._waiting = []

    # Everything below runs on the writer thread.

    def _write(self, requests: Sequence[_Request]) -> list[Outcome]:
        batch = _Batch(requests)
        todo = list(range(len(requests)))
        while todo:
            todo = self._transaction(batch, todo)
        done = [outcome for outcome in batch.outcomes if outcome is not None]
        assert len(done) == len(requests), "every request ends with a beat or an error"
        return done

    def _transaction(self, batch: _Batch, todo: list[int]) -> list[int]:
        """Write the requests `todo` in one transaction; returns the ones to write again."""
        connection = self._connect()
        written: list[int] = []
        try:
            with connection.begin(), Session(connection) as session:
                stories: dict[ThreadKey, _StoryState] = {}
                for at, i in enumerate(todo):
                    try:
                        batch.outcomes[i] = self._append(session, stories, batch.requests[i])
                        written.append(i)
                    except DBAPIError as error:
                        batch.outcomes[i] = error
                        if not _in_transaction(connection):
                            raise _TransactionLost(todo[at + 1 :]) from error
                        # Only the statement was undone; the others still stand.
                    except Exception as error:  # a refusal, or a bug: this request only
                        batch.outcomes[i] = error
        except _TransactionLost as lost:
            return written + lost.untried
        except DBAPIError as error:  # BEGIN or COMMIT failed: nothing was written
            for i in written:
                batch.outcomes[i] = error
        return []

    def _append(
        self, session: Session, stories: dict[ThreadKey, _StoryState], request: _Request
    ) -> Beat:
        beat = request.beat
        state = stories.get(beat.thread)
        if state is None:
            state = stories[beat.thread] = self._load(session, beat.thread)
        if state.story is not None and beat.request_key is not None:
            again = session.scalars(beat_by_request(state.story.id, beat.request_key)).first()
            if again is not None:
                return beat_value(again)  # a redelivered request: the beat it added
        story = request.admit(state.story, state.cast, state.count)
        position = state.count + 1
        values = dict(
            story_id=story.id, position=position, author_id=beat.author_id,
            author_name=beat.author_name, text=beat.text, created_at=beat.created_at,
            request_key=beat.request_key,
        )  # fmt: skip
        result = session.connection().execute(_INSERT, values)
        state.count = position  # only once the insert stood
        return Beat(result.lastrowid, story.id, position, beat.author_id, beat.author_name,
                    beat.text, beat.created_at)  # fmt: skip

    def _load(self, session: Session, thread: ThreadKey) -> _StoryState:
        where = {"workspace": thread.workspace_id, "channel": thread.channel_id,
                 "thread": thread.thread_id}  # fmt: skip
        row = session.scalars(_FIND_STORY, where).one_or_none()
        if row is None:
            return _StoryState(None, (), 0)
        cast = [_character(c) for c in session.scalars(_CAST, {"story": row.id})]
        count = session.scalar(_COUNT, {"story": row.id}) or 0
        return _StoryState(_story(row), cast, count)

    def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = self._engine.connect()
        return self._connection

    def _disconnect(self) -> None:
        # On this thread: sqlite3 connections refuse to be closed from another one.
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._engine.dispose()


def _in_transaction(connection: Connection) -> bool:
    driver: Any = connection.connection.driver_connection
    return bool(driver.in_transaction)


def _settle(request: _Request, outcome: Outcome) -> None:
    if request.result.done():  # the caller was cancelled
        return
    if isinstance(outcome, Exception):
        request.result.set_exception(outcome)
    else:
        request.result.set_result(outcome)
