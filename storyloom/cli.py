"""The `storyloom` command: each subcommand is the entry point of one process.

A subcommand reads the settings once and hands them to its process's composition root,
which opens the resources with `async with` and passes them into constructors: the chat
bots' `start_discord`, `run_slack` and `run_console` (bot/, whose story service is wired by
one builder, bot/wiring.py), the GPU worker's `run_worker` (jobs/worker_main.py), and the
story-file jobs `render`/`clip` (app/render_story.py, app/clip_story.py). Nothing is created at
import time, and `--help` loads no heavy library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from storyloom.app.storyfile import StoryFile
    from storyloom.config import Settings

app = typer.Typer(
    name="storyloom",
    help="Collaborative comics with consistent characters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def print_version(value: bool) -> None:
    """`--version`: print the installed version and stop."""
    if value:
        from storyloom import __version__

        typer.echo(f"storyloom {__version__}")
        raise typer.Exit()


@app.callback()
def storyloom(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Collaborative comics with consistent characters."""
    # Our own progress bar and one-line messages are the interface: quiet the libraries'
    # download/loading bars and info logs unless the operator asks for them.
    for name, value in (
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("DIFFUSERS_VERBOSITY", "error"),
        ("TRANSFORMERS_VERBOSITY", "error"),
    ):
        os.environ.setdefault(name, value)


ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model", help="Model id, local folder, checkpoint file, or tiny-sdxl/tiny-sd15."
    ),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear line to stderr and return the exit to raise."""
    typer.echo(f"storyloom: {message}", err=True)
    return typer.Exit(code)


def run_chat_bot(main: Coroutine[Any, Any, None]) -> None:
    """Run a chat bot's process until it stops; if its model load is still running then
    (a stop by signal does not wait for it), end the process at once."""
    import asyncio

    asyncio.run(main)
    from storyloom.jobs.runtime import end_process_if_load_left  # (imported by the bot)

    end_process_if_load_left()


SeedOption = Annotated[int | None, typer.Option(help="Override the story's seed.")]
StepsOption = Annotated[int | None, typer.Option(min=1, max=200, help="Denoising steps.")]
SizeOption = Annotated[
    int | None, typer.Option(min=64, max=2048, help="Panel width and height in pixels.")
]


@app.command()
def render(
    story: Annotated[Path, typer.Argument(help="A story file (TOML).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for sheets, panels, page.")] = Path(
        "storyloom-out"
    ),
    model: ModelOption = None,
    seed: SeedOption = None,
    steps: StepsOption = None,
    size: SizeOption = None,
    layout: Annotated[
        str, typer.Option(help="Page layout: grid, strip, classic or vertical.")
    ] = "grid",
    export: Annotated[
        str, typer.Option(help="Comma-separated exports: png (pages), pdf, zip.")
    ] = "png",
) -> None:
    """Render a story file: character sheets, panels, pages, exports and render.json."""
    from storyloom.generation.export import EXPORT_FORMATS
    from storyloom.generation.layout import LayoutError, PageSpec

    formats = [f.strip() for f in export.split(",") if f.strip()]
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise fail(f"unknown export {', '.join(unknown) or '(none)'}; use png, pdf or zip")
    settings, parsed = _settings_and_story(story, model, seed, steps, size)
    page = PageSpec(title=parsed.title, layout=layout, seed=parsed.seed)  # type: ignore[arg-type]
    try:
        page.validate()
    except LayoutError as error:
        raise fail(str(error)) from None
    if out.exists() and not out.is_dir():
        raise fail(f"{out} exists and is not a folder")

    from storyloom.app.render_story import render_story_file
    from storyloom.generation.models import ModelLoadError

    try:
        result = render_story_file(parsed, settings, out, page=page, formats=formats)  # type: ignore[arg-type]
    except ModelLoadError as error:
        raise fail(str(error), code=1) from None
    typer.echo(f"wrote {len(result.panels)} panels and {len(result.sheets)} character sheets")
    for path in result.exports:
        typer.echo(f"export:   {path}")
    typer.echo(f"manifest: {result.manifest}")


@app.command()
def clip(
    story: Annotated[Path, typer.Argument(help="A story file (TOML).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the clip.")] = Path(
        "storyloom-out"
    ),
    motion: Annotated[
        bool, typer.Option("--motion", help="Render moving in-betweens between panels.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="mp4, webp or gif.")] = "mp4",
    model: ModelOption = None,
    seed: SeedOption = None,
    steps: StepsOption = None,
    size: SizeOption = None,
) -> None:
    """Render a story file into a short clip that fits the upload budget."""
    from storyloom.generation.clip import ClipError
    from storyloom.generation.models import ModelLoadError

    if fmt not in ("mp4", "webp", "gif"):
        raise fail(f"unknown format {fmt}; use mp4, webp or gif")
    settings, parsed = _settings_and_story(story, model, seed, steps, size)
    if out.exists() and not out.is_dir():
        raise fail(f"{out} exists and is not a folder")

    from storyloom.app.clip_story import clip_story_file

    try:
        result = clip_story_file(parsed, settings, out, fmt=fmt, motion=motion)  # type: ignore[arg-type]
    except ClipError as error:
        raise fail(str(error)) from None
    except ModelLoadError as error:
        raise fail(str(error), code=1) from None
    size_mib = result.bytes / 1024 / 1024
    typer.echo(
        f"clip: {result.path} ({size_mib:.2f} MiB, {result.width}×{result.height}, "
        f"{result.seconds:.1f} s, {result.frames} frames)"
    )


@app.command("eval")
def eval_(
    story: Annotated[Path, typer.Argument(help="A story file (TOML).")],
    model: ModelOption = None,
    seed: SeedOption = None,
    steps: StepsOption = None,
    size: SizeOption = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the scores as JSON here.")
    ] = None,
) -> None:
    """Render a story file and score identity consistency (CLIP-I, DINO, CLIP-T)."""
    settings, parsed = _settings_and_story(story, model, seed, steps, size)
    if json_path is not None and json_path.is_dir():
        raise fail(f"{json_path} is a folder; give a file name for --json")

    from storyloom.app.eval_story import evaluate_story, table, write_json
    from storyloom.generation.models import ModelLoadError
    from storyloom.generation.renderer import RenderInputError

    try:
        result = evaluate_story(parsed, settings)
    except ModelLoadError as error:
        raise fail(str(error), code=1) from None
    except RenderInputError as error:
        raise fail(str(error)) from None
    typer.echo(table(result))
    if json_path is not None:
        write_json(result, json_path)
        typer.echo(f"json: {json_path}")


@app.command()
def console(
    model: ModelOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for rendered pages and clips.")
    ] = None,
    database: Annotated[
        str | None, typer.Option("--database", help="SQLAlchemy URL (default: SQLite file).")
    ] = None,
) -> None:
    """A terminal chat room with the bots' commands; reads lines from standard input."""
    import asyncio

    from pydantic import ValidationError

    from storyloom.bot.console import run_console
    from storyloom.config import load_settings
    from storyloom.ops.logs import setup_logging

    overrides: dict[str, object] = {}
    if model is not None:
        overrides["model"] = model
    if out is not None:
        overrides["output_dir"] = out
    if database is not None:
        overrides["database_url"] = database
    try:
        settings = load_settings(**overrides)
    except ValidationError as error:
        first = error.errors()[0]
        raise fail(f"setting {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    # the terminal is the chat room: only warnings, unless STORYLOOM_LOG_LEVEL says otherwise
    setup_logging(settings, level=None if "log_level" in settings.model_fields_set else "WARNING")
    raise typer.Exit(asyncio.run(run_console(settings, sys.stdin, sys.stdout)))


@app.command()
def discord(
    sync: Annotated[bool, typer.Option("--sync", help="Sync /story commands globally.")] = False,
    sync_guild: Annotated[
        int | None, typer.Option("--sync-guild", help="Sync commands to one guild (dev).")
    ] = None,
) -> None:
    """Run the Discord bot (token from STORYLOOM_DISCORD_TOKEN); it renders in-process
    unless STORYLOOM_QUEUE=redis."""
    # only what connects to the gateway: the bot's modules are imported once it is connected
    from storyloom.bot.discord.start import MissingToken, start_discord
    from storyloom.config import load_settings
    from storyloom.ops.logs import setup_logging

    settings = load_settings()
    setup_logging(settings)  # ops: text or JSON lines, secrets masked
    try:
        run_chat_bot(start_discord(settings, sync, sync_guild))
    except MissingToken as error:
        raise fail(str(error)) from None


@app.command()
def slack(
    http: Annotated[
        bool, typer.Option("--http", help="Serve HTTP with the signing secret, not Socket Mode.")
    ] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP port.")] = 3000,
) -> None:
    """Run the Slack bot (Socket Mode by default) with an in-process worker."""
    # only what opens Slack's port: the bot's modules are imported once it answers
    from storyloom.bot.slack.start import MissingSlackSetting, start_slack
    from storyloom.config import load_settings
    from storyloom.ops.logs import setup_logging

    settings = load_settings()
    setup_logging(settings)  # ops: text or JSON lines, secrets masked
    try:
        run_chat_bot(start_slack(settings, http, port))
    except MissingSlackSetting as error:
        raise fail(str(error)) from None


@app.command()
def worker(model: ModelOption = None) -> None:
    """A GPU worker: render jobs from Redis, one at a time (run `storyloom db upgrade` first)."""
    import asyncio

    from storyloom.config import load_settings
    from storyloom.jobs.broker import BrokerOptions
    from storyloom.jobs.worker_main import run_worker
    from storyloom.ops.logs import setup_logging
    from storyloom.ops.process import run_service

    settings = load_settings(**({"model": model} if model else {}))
    setup_logging(settings)  # ops: text or JSON lines, secrets masked
    options = BrokerOptions(redis_url=settings.redis_url.get_secret_value())
    # ops: /healthz and /metrics; the worker handles SIGTERM itself (finish or hand back)
    asyncio.run(
        run_service(
            settings, "worker", lambda ops: run_worker(settings, options, ops), own_signals=False
        )
    )


@app.command()
def doctor() -> None:
    """Check configuration, database, model, GPU and folders, and say how to fix each problem."""
    import asyncio

    from storyloom.app.doctor import diagnose, report

    text, code = report(asyncio.run(diagnose()))
    typer.echo(text)
    raise typer.Exit(code)


@app.command()
def health() -> None:
    """Exit 0 if the storyloom process on this machine answers /healthz (container checks)."""
    from storyloom.config import load_settings
    from storyloom.ops.health_client import health_url, probe

    settings = load_settings()
    if settings.ops_port == 0:
        raise fail("the operations server is off: set STORYLOOM_OPS_PORT (e.g. 9100)")
    healthy, answer = probe(health_url(settings))
    typer.echo(answer)
    raise typer.Exit(0 if healthy else 1)


@app.command("config-reference")
def config_reference() -> None:
    """Print the configuration reference (Markdown), generated from the settings object."""
    from storyloom.config import reference_markdown

    typer.echo(reference_markdown(), nl=False)


def _mount_db() -> None:
    from storyloom.app.db_commands import db_app

    app.add_typer(db_app, name="db", help="Database migrations.")


_mount_db()


def _settings_and_story(
    story: Path, model: str | None, seed: int | None, steps: int | None, size: int | None
) -> tuple[Settings, StoryFile]:
    """Settings with the command's overrides, and the checked story; exit 2 on bad input."""
    from pydantic import ValidationError

    from storyloom.app.storyfile import StoryFileError, load_story
    from storyloom.config import load_settings
    from storyloom.generation.styles import STYLE_NAMES

    overrides: dict[str, object] = {}
    if model is not None:
        overrides["model"] = model
    if steps is not None:
        overrides["steps"] = steps
    if size is not None:
        overrides["width"] = overrides["height"] = size
    try:
        return load_settings(**overrides), load_story(story, STYLE_NAMES, seed=seed)
    except StoryFileError as error:
        raise fail(str(error)) from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise fail(f"setting {where}: {first['msg']}") from None


def main() -> None:
    """Entry point for `python -m storyloom`."""
    app()


if __name__ == "__main__":
    main()
