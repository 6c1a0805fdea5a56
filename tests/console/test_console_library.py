"""The character library in the console: a character cast from a picture, drawn and locked on
the tiny model, saved, cast into another thread with its look kept, exported to a file and
imported back."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from storyloom.bot.console import run_console
from storyloom.config import Settings


def settings(tmp_path: Path, models: Path) -> Settings:
    return Settings(
        model="tiny-sdxl",
        model_cache_dir=models,
        width=64,
        height=64,
        steps=2,
        store_dir=tmp_path / "stores",
        output_dir=tmp_path / "out",
        character_dir=tmp_path / "characters",
        adapter_model="tiny-ip-adapter",  # characters from a picture need an image adapter
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'console.db'}",
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


async def session(tmp_path: Path, models: Path, lines: str) -> str:
    out = io.StringIO()
    assert await run_console(settings(tmp_path, models), io.StringIO(lines), out) == 0
    return out.getvalue()


async def test_a_library_character_travels_between_threads_and_files(
    tmp_path: Path, models: Path
) -> None:
    photo = tmp_path / "mira.jpg"
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    Image.new("RGB", (80, 60), (180, 60, 60)).save(photo, "JPEG", exif=exif.tobytes())

    first = await session(
        tmp_path,
        models,
        f"""\
/story new One
/story cast Mira: a girl with red hair --reference {photo}
/story cast Ada: a pilot --reference {tmp_path / "missing.png"}
/story look Mira
""",
    )
    assert "Mira is in the cast with a reference picture (no sheet yet" in first
    assert "✗ There is no picture at" in first
    assert re.search(r"job #\d+ sheet done", first)
    (kept,) = (tmp_path / "characters").iterdir()
    assert not Image.open(kept).getexif()  # stored clean

    second = await session(
        tmp_path,
        models,
        """\
/story look Mira lock
/character save Mira
/character list
/character show Mira
/as Tom
/character delete Mira
/as host
/thread two
/story new Two
/story cast mira
/story status
/character export Mira
/character delete Mira
/character list
""",
    )
    assert "Mira: look locked" in second
    assert "Mira is in this server's library (look locked)" in second
    assert "Mira (comic, look locked, reference picture): a girl with red hair" in second
    assert "page 1 of 1 (1 characters)" in second
    sheet = re.search(r"^\s+(\S+Mira-sheet\.png)$", second, re.MULTILINE)
    assert sheet is not None and Image.open(sheet.group(1)).format == "PNG"
    assert "✗ Mira was saved by host; only they or a moderator can delete it." in second
    assert "Mira is in the cast from this server's library with a reference picture: look " \
        "locked, no sheet to draw." in second  # fmt: skip
    assert "job #" not in second.split("/story new Two")[-1]  # no lock pass queued there
    exported = re.search(r"exported to (\S+\.storyloom-character)", second)
    assert exported is not None
    assert "Mira is no longer in this server's library." in second
    assert second.rstrip().endswith("save a story's character with /character save NAME.")
    assert sorted(p.name for p in (tmp_path / "characters").iterdir()) == [kept.name]  # in use

    third = await session(
        tmp_path,
        models,
        f"""\
/character import {exported.group(1)}
/character import {photo}
/thread three
/story new Three
/story cast Mira
""",
    )
    assert "Imported Mira into this server's library (look locked)." in third
    assert "✗ That file is not a storyloom character file" in third
    assert "look locked, no sheet to draw." in third


async def test_deleting_the_story_deletes_a_reference_nothing_else_uses(
    tmp_path: Path, models: Path
) -> None:
    photo = tmp_path / "ada.png"
    Image.new("RGB", (40, 40), (20, 90, 160)).save(photo)
    text = await session(
        tmp_path,
        models,
        f"""\
/story new One
/story cast Ada: a pilot --reference {photo}
/story cast Bea: a pilot's twin --reference {photo}
/thread two
/story new Two
/story cast Cy: a mechanic --reference {photo}
/story delete
""",
    )
    assert "story “Two” deleted" in text
    assert len(list((tmp_path / "characters").iterdir())) == 1  # Ada and Bea still use it
    text = await session(tmp_path, models, "/story delete\n")
    assert "story “One” deleted" in text
    assert list((tmp_path / "characters").iterdir()) == []
