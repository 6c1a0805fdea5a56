"""Telling a database outage (worth waiting out) from a real error (not worth retrying)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# PostgreSQL's codes for "not now": connection exceptions (class 08), a server shutting
# down, crashed or still starting (57P01-57P03), too many connections.
_PG_NOT_NOW = ("08", "57P01", "57P02", "57P03", "53300")


def is_outage(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached or was busy (a restart, a
    network cut, SQLite's lock held too long) rather than that the statement was wrong."""
    if isinstance(error, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        sqlstate = getattr(error.orig, "sqlstate", None) or ""
        if sqlstate.startswith(_PG_NOT_NOW):
            return True
    # drivers raise these from connect() before SQLAlchemy can wrap them
    return isinstance(error, OSError | ConnectionError | TimeoutError)
