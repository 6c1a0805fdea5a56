"""Telling a database outage (worth waiting out) from a real error (not worth retrying)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError


def is_outage(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached or was busy (a restart, a
    network cut, SQLite's lock held too long) rather than that the statement was wrong."""
    if isinstance(error, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    # drivers raise these from connect() before SQLAlchemy can wrap them
    return isinstance(error, OSError | ConnectionError | TimeoutError)
