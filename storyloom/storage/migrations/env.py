"""Alembic environment: migrations run on a connection handed over by `upgrade_database`,
so they work from inside a running event loop (no second engine, no alembic.ini)."""

from __future__ import annotations

from alembic import context

from storyloom.storage.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "storyloom migrations run through `storyloom db upgrade` (upgrade_database), "
        "which hands Alembic an open connection."
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
