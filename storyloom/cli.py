"""The `storyloom` command: the one composition root of each process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="storyloom",
    help="Collaborative comics with consistent characters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def storyloom() -> None:
    """Collaborative comics with consistent characters."""


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


@app.command()
def render(
    story: Annotated[Path, typer.Argument(help="A story file (TOML).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for sheets, panels, page.")] = Path(
        "storyloom-out"
    ),
    model: ModelOption = None,
    seed: Annotated[int | None, typer.Option(help="Override the story's seed.")] = None,
    steps: Annotated[int | None, typer.Option(min=1, max=200, help="Denoising steps.")] = None,
    size: Annotated[
        int | None, typer.Option(min=64, max=2048, help="Panel width and height in pixels.")
    ] = None,
    layout: Annotated[
        str, typer.Option(help="Page layout: grid, strip, classic or vertical.")
    ] = "grid",
    export: Annotated[
        str, typer.Option(help="Comma-separated exports: png (pages), pdf, zip.")
    ] = "png",
) -> None:
    """Render a story file: character sheets, panels, pages, exports and render.json."""
    from pydantic import ValidationError

    from storyloom.config import load_settings
    from storyloom.generation.export import EXPORT_FORMATS
    from storyloom.generation.layout import LayoutError, PageSpec
    from storyloom.generation.styles import STYLE_NAMES
    from storyloom.storyfile import StoryFileError, load_story

    overrides: dict[str, object] = {}
    if model is not None:
        overrides["model"] = model
    if steps is not None:
        overrides["steps"] = steps
    if size is not None:
        overrides["width"] = overrides["height"] = size
    formats = [f.strip() for f in export.split(",") if f.strip()]
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise fail(f"unknown export {', '.join(unknown) or '(none)'}; use png, pdf or zip")
    try:
        settings = load_settings(**overrides)
        parsed = load_story(story, STYLE_NAMES, seed=seed)
        page = PageSpec(title=parsed.title, layout=layout, seed=parsed.seed)  # type: ignore[arg-type]
        page.validate()
    except (StoryFileError, LayoutError) as error:
        raise fail(str(error)) from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise fail(f"setting {where}: {first['msg']}") from None
    if out.exists() and not out.is_dir():
        raise fail(f"{out} exists and is not a folder")

    from storyloom.generation.models import ModelLoadError
    from storyloom.render_story import render_story_file

    try:
        result = render_story_file(parsed, settings, out, page=page, formats=formats)  # type: ignore[arg-type]
    except ModelLoadError as error:
        raise fail(str(error), code=1) from None
    typer.echo(f"wrote {len(result.panels)} panels and {len(result.sheets)} character sheets")
    for path in result.exports:
        typer.echo(f"export:   {path}")
    typer.echo(f"manifest: {result.manifest}")


def main() -> None:
    """Entry point for `python -m storyloom`."""
    app()


if __name__ == "__main__":
    main()
