"""SQLAlchemy async storage: tables, unit of work, migrations."""

from storyloom.storage.engine import SqlDatabase, create_engine, open_database
from storyloom.storage.migrate import upgrade_database

__all__ = ["SqlDatabase", "create_engine", "open_database", "upgrade_database"]
