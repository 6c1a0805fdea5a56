"""Exports: PNG pages, a multi-page PDF, a ZIP with story.md and story.html; never a
half-written file."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from PIL import Image

from storyloom.generation.export import atomic_write, export_story
from storyloom.generation.layout import EmptyStoryError, PagePanel, PageSpec, plan_pages

SPEC = PageSpec(
    title="[Mira] and the Lighthouse",
    contributors=("alice", "bob", "carol"),
    width=400,
    height=500,
    panels_per_page=2,
)


def _pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))


def test_every_format_holds_every_page(story_panels: list[PagePanel], tmp_path: Path) -> None:
    result = export_story(story_panels, SPEC, tmp_path)
    pages = len(plan_pages(len(story_panels), SPEC))
    assert pages == 2
    assert [p.name for p in result.pages] == ["story-page-01.png", "story-page-02.png"]
    for path in result.pages:
        with Image.open(path) as image:
            assert image.size == (400, 500)
    assert result.pdf is not None and _pdf_pages(result.pdf) == pages
    assert result.zip is not None
    with zipfile.ZipFile(result.zip) as archive:
        names = sorted(archive.namelist())
    drawn = [f"panels/panel-{i + 1:02d}.png" for i, p in enumerate(story_panels) if p.image]
    expected = [f"pages/page-{n:02d}.png" for n in range(1, pages + 1)] + drawn
    assert names == sorted([*expected, "story.md", "story.html"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in result.files())


def test_story_md_lists_beats_with_authors(story_panels: list[PagePanel], tmp_path: Path) -> None:
    result = export_story(story_panels, SPEC, tmp_path, formats=["zip"])
    assert result.zip is not None and result.pages == () and result.pdf is None
    with zipfile.ZipFile(result.zip) as archive:
        story = archive.read("story.md").decode()
    assert story.startswith("# Mira and the Lighthouse\n")
    assert "By alice, bob, carol" in story
    for number, panel in enumerate(story_panels, start=1):
        assert f"## Panel {number} — {panel.author}" in story
    assert "> **Mira:** What is this?" in story
    assert "> **Bob:** Careful with that." in story
    assert "[Mira]" not in story and "[Bob]" not in story


def test_an_empty_story_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(EmptyStoryError):
        export_story([], SPEC, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "page.png"
    target.write_bytes(b"old page")

    def half_then_crash(fh: BinaryIO) -> None:
        fh.write(b"half a new page")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_crash)
    assert target.read_bytes() == b"old page"
    assert [p.name for p in tmp_path.iterdir()] == ["page.png"]


def test_a_pdf_that_fails_midway_is_never_left_behind(
    story_panels: list[PagePanel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = Image.Image.save

    def failing_save(self: Image.Image, fp: Any, format: str | None = None, **kw: Any) -> None:
        if format == "PDF":
            fp.write(b"%PDF-1.4 partial")
            raise OSError("disk full")
        real_save(self, fp, format, **kw)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        export_story(story_panels, SPEC, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["story-page-01.png", "story-page-02.png"]


def test_an_unknown_format_is_refused_before_writing(
    story_panels: list[PagePanel], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="unknown export format tiff"):
        export_story(story_panels, SPEC, tmp_path, formats=["png", "tiff"])  # type: ignore[list-item]
    assert list(tmp_path.iterdir()) == []
