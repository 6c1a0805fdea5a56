"""A posted character sheet is labelled: the character's name over the looks, numbered."""

from __future__ import annotations

from PIL import Image, ImageChops

from storyloom.generation.pages.sheet import labelled_sheet, sheet_file_stem


def test_the_sheet_shows_every_look_under_an_inked_title() -> None:
    looks = [Image.new("RGB", (96, 96), colour) for colour in ("red", "blue")]
    sheet = labelled_sheet("ミラ Rose", looks)
    assert sheet.width == 192 and sheet.height > 96
    middle = sheet.height // 2  # the looks sit between the title and the labels
    title = sheet.crop((0, 0, sheet.width, 24))
    blank = Image.new("RGB", title.size, title.getpixel((0, 0)))
    assert ImageChops.difference(title, blank).getbbox() is not None  # the name is inked
    pixels = [sheet.getpixel((48, y)) for y in range(sheet.height)]
    assert (255, 0, 0) in pixels and sheet.getpixel((144, middle)) == (0, 0, 255)
    assert sheet_file_stem("Mira  Rose") == "mira-rose-sheet"
