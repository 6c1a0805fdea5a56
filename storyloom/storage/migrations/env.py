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
# Tables whose shape is slack_sdk's (migration 0005), not in our models: autogenerate must
# not offer to drop them (tests/storage compares them against slack_sdk's own definitions).
SLACK_SDK_TABLES = frozenset({"slack_installations", "slack_bots", "slack_oauth_states"})


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave slack_sdk's tables out of autogenerate's comparison."""
    return not (type_ == "table" and name in SLACK_SDK_TABLES)


context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_name=include_name,
    # SQLite cannot ALTER most things: batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
