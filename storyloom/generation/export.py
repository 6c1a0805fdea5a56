"""Exports of a rendered story: PNG pages, one multi-page PDF, and a ZIP with a story.md and
a story.html (the reader page, readable offline from the unpacked folder).

Every file is written to a temporary name in its final folder and renamed into place,
so a failure (full disk, a crash mid-write) never leaves a half-written file behind.
"""

from __future__ import annotations

import io
import os
import secrets
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from PIL import Image

from storyloom.generation.pages.captions import printable
from storyloom.generation.pages.draw import render_pages
from storyloom.generation.pages.model import PagePanel, PageSpec
from storyloom.reader.export_view import export_view, page_name
from storyloom.reader.page import render_page

ExportFormat = Literal["png", "pdf", "zip"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("png", "pdf", "zip")
PDF_DPI = 150.0


@dataclass(frozen=True)
class ExportResult:
    """The files an export wrote (only those of the requested formats)."""

    pages: tuple[Path, ...]
    pdf: Path | None
    zip: Path | None

    def files(self) -> list[Path]:
        """Every written file, pages first."""
        return [*self.pages, *(p for p in (self.pdf, self.zip) if p is not None)]


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write` on a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with temp.open("wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` atomically."""

    def write(fh: BinaryIO) -> None:
        fh.write(data)

    return atomic_write(path, write)


def png_bytes(image: Image.Image) -> bytes:
    """`image` encoded as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


def write_pdf(pages: Sequence[Image.Image], path: Path) -> Path:
    """All pages as one PDF, one page per image, atomically."""
    if not pages:
        raise ValueError("a PDF needs at least one page")
    first, *rest = [page.convert("RGB") for page in pages]
    return atomic_write(
        path,
        lambda fh: first.save(fh, "PDF", save_all=True, append_images=rest, resolution=PDF_DPI),
    )


def story_markdown(panels: Sequence[PagePanel], spec: PageSpec) -> str:
    """The story as Markdown: title, contributors, then each beat with its author."""
    lines = [f"# {printable(spec.title) or 'Untitled story'}", ""]
    names = [printable(name) for name in spec.contributors if printable(name)]
    if names:
        lines += [f"By {', '.join(names)}", ""]
    for number, panel in enumerate(panels, start=1):
        author = printable(panel.author)
        lines += [f"## Panel {number}" + (f" — {author}" if author else ""), ""]
        if printable(panel.caption):
            lines += [printable(panel.caption), ""]
        for speaker, line in panel.dialogue:
            lines += [f"> **{printable(speaker)}:** {printable(line)}", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_zip(
    pages: Sequence[Image.Image],
    panels: Sequence[PagePanel],
    markdown: str,
    path: Path,
    html: str | None = None,
) -> Path:
    """A ZIP of `pages/page-NN.png`, `panels/panel-NN.png` (drawn panels), `story.md` and,
    when given, `story.html`."""

    def write(fh: BinaryIO) -> None:
        # PNGs are already compressed: store them, deflate only the Markdown.
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as archive:
            for number, page in enumerate(pages, start=1):
                archive.writestr(page_name(number), png_bytes(page))
            for number, panel in enumerate(panels, start=1):
                if panel.image is not None:
                    archive.writestr(f"panels/panel-{number:02d}.png", png_bytes(panel.image))
            archive.writestr("story.md", markdown, compress_type=zipfile.ZIP_DEFLATED)
            if html is not None:
                archive.writestr("story.html", html, compress_type=zipfile.ZIP_DEFLATED)

    return atomic_write(path, write)


def export_story(
    panels: Sequence[PagePanel],
    spec: PageSpec,
    out_dir: Path,
    formats: Sequence[ExportFormat] = EXPORT_FORMATS,
    *,
    stem: str = "story",
    cast: Sequence[tuple[str, str]] = (),
) -> ExportResult:
    """Render the story's pages and write the requested formats into `out_dir`.

    Raises LayoutError (before writing anything) for an empty story or bad page settings.
    `cast` ((name, description) pairs) is listed in the ZIP's story.html.
    """
    unknown = sorted(set(formats) - set(EXPORT_FORMATS))
    if unknown:
        choices = ", ".join(EXPORT_FORMATS)
        raise ValueError(f"unknown export format {', '.join(unknown)}; choose from {choices}")
    images = [page.image for page in render_pages(panels, spec)]
    out_dir = Path(out_dir)
    page_paths: list[Path] = []
    if "png" in formats:
        for number, image in enumerate(images, start=1):
            target = out_dir / f"{stem}-page-{number:02d}.png"
            page_paths.append(write_bytes(target, png_bytes(image)))
    pdf = write_pdf(images, out_dir / f"{stem}.pdf") if "pdf" in formats else None
    archive = None
    if "zip" in formats:
        html = render_page(export_view(panels, spec, len(images), cast), embed_policy=True)
        markdown = story_markdown(panels, spec)
        archive = write_zip(images, panels, markdown, out_dir / f"{stem}.zip", html)
    return ExportResult(tuple(page_paths), pdf, archive)
