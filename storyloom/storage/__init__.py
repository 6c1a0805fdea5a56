"""SQLAlchemy async storage: tables, unit of work, migrations."""
