"""A character sheet as members see it: the identity images side by side under the
character's name, each numbered, so a posted sheet says whose look it is."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

from storyloom.generation.pages.captions import load_font, printable

INK = (20, 20, 24)
PAPER = (250, 248, 242)


def sheet_file_stem(name: str) -> str:
    """The file name of a character's sheet (`mira-rose-sheet`): members see whose it is."""
    return "-".join(name.lower().split()) + "-sheet"


def labelled_sheet(name: str, images: Sequence[Image.Image]) -> Image.Image:
    """The images in a row under a title with the character's name, each labelled
    `look N` (any script: the lettering chain draws the name)."""
    width = sum(image.width for image in images)
    tallest = max(image.height for image in images)
    size = max(12, min(48, tallest // 8))
    title = load_font(size, bold=True)
    label = load_font(max(10, size * 2 // 3))
    top = size * 2
    bottom = label.size * 2
    sheet = Image.new("RGB", (width, top + tallest + bottom), PAPER)
    draw = ImageDraw.Draw(sheet)
    heading = printable(f"{name} — character sheet")
    title.draw(draw, ((width - title.getlength(heading)) / 2, size // 2), heading, INK)
    x = 0
    for number, image in enumerate(images, 1):
        sheet.paste(image.convert("RGB"), (x, top))
        text = f"look {number}"
        label.draw(draw, (x + (image.width - label.getlength(text)) / 2, top + tallest), text, INK)
        x += image.width
    return sheet
