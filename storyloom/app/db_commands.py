"""`storyloom db …`: database commands (the CLI mounts `db_app`).

Outside the storage package, whose import loads SQLAlchemy: `storyloom --help` and
`storyloom render` never pay for the database layer (they start in well under a second)."""

from __future__ import annotations

from typing import Annotated

import typer

db_app = typer.Typer(
    name="db", help="The story database: migrations.", no_args_is_help=True, add_completion=False
)


@db_app.callback()
def db() -> None:
    """The story database: migrations."""
    # A callback keeps `upgrade` a sub-command even while it is the only one.


@db_app.command()
def upgrade(
    url: Annotated[
        str | None,
        typer.Option("--url", help="Database URL; default: the database_url setting."),
    ] = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the migrations up to REVISION (default: the newest)."""
    import asyncio

    from sqlalchemy.engine import make_url

    from storyloom.storage.migrate import upgrade_database

    if url is None:
        from storyloom.config import load_settings

        url = load_settings().database_url
    asyncio.run(upgrade_database(url, revision))
    shown = make_url(url).render_as_string(hide_password=True)
    typer.echo(f"database {shown} is at revision {revision}")
