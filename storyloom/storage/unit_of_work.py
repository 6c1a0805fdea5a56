"""The unit of work: one session, one transaction, the repositories over it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storyloom.storage.repositories import (
    SqlBeats,
    SqlCharacters,
    SqlJobs,
    SqlStories,
)
from storyloom.storage.server_repo import SqlAudit, SqlServers
from storyloom.story.ports import UnitOfWork


class SqlUnitOfWork:
    """Implements the core's `UnitOfWork`; the session's transaction is owned by the caller."""

    def __init__(self, session: AsyncSession, *, lock_rows: bool) -> None:
        self.session = session
        self.stories = SqlStories(session, lock_rows=lock_rows)
        self.beats = SqlBeats(session)
        self.characters = SqlCharacters(session)
        self.jobs = SqlJobs(session)
        self.servers = SqlServers(session)
        self.audit = SqlAudit(session)


def session_of(uow: UnitOfWork) -> AsyncSession:
    """The SQL session behind a unit of work, for queries beyond the core's repositories
    (the fair line, progress, result files); a TypeError for any other unit of work."""
    if not isinstance(uow, SqlUnitOfWork):
        raise TypeError("this reads the SQL database: pass a SqlUnitOfWork")
    return uow.session
