"""Lettering in any script: a chain of fonts, each character drawn with the first that has it.

The bundled DejaVu Sans covers Latin, Greek, Cyrillic, Arabic and Hebrew; the Noto families
from Debian's `fonts-noto-core` and `fonts-noto-cjk` (installed in CI and in both images)
add Devanagari, Thai, Chinese, Japanese and Korean; `fonts-symbola` adds emoji. A line is
cut into runs of one font each (spaces and combining marks stay with the run they follow,
so shaping and bidi still see whole words) and the runs are drawn on one baseline. A
character no font has is drawn as U+FFFD, a visible replacement, and logged once: text
never silently vanishes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from unicodedata import category

from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)
BUNDLED = Path(__file__).resolve().parent.parent / "fonts"
REPLACEMENT = "\ufffd"
# where Debian/Ubuntu put packaged fonts (fonts-noto-core, fonts-noto-cjk, fonts-symbola)
SYSTEM_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
# the fallback chain after DejaVu, in order: (regular, bold) file names
FALLBACKS = (
    ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf"),  # Latin/Greek/Cyrillic DejaVu lacks
    ("NotoSansDevanagari-Regular.ttf", "NotoSansDevanagari-Bold.ttf"),
    ("NotoSansThai-Regular.ttf", "NotoSansThai-Bold.ttf"),
    ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc"),  # Han, kana, hangul
    ("NotoSansArabic-Regular.ttf", "NotoSansArabic-Bold.ttf"),
    ("NotoSansHebrew-Regular.ttf", "NotoSansHebrew-Bold.ttf"),
    ("NotoSansSymbols-Regular.ttf", "NotoSansSymbols-Bold.ttf"),
    ("NotoSansSymbols2-Regular.ttf", "NotoSansSymbols2-Regular.ttf"),
    # emoji in monochrome outlines (fonts-symbola): ink like the rest of the lettering, at
    # any size; the colour emoji font is bitmap-only (CBDT, one size) and would need scaling
    ("Symbola_hint.ttf", "Symbola_hint.ttf"),
)
_NOT_A_CHAR = "\U0010fffd"  # a private-use code point: every font draws its .notdef box
_reported: set[str] = set()


@lru_cache(maxsize=1)
def _installed() -> dict[str, Path]:
    """Font files found under the search directories, by file name (the first wins)."""
    found: dict[str, Path] = {}
    wanted = {name for pair in FALLBACKS for name in pair}
    for root in map(Path, SYSTEM_DIRS):
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.name in wanted:
                    found.setdefault(path.name, path)
    return found


def chain_files(bold: bool = False) -> list[Path]:
    """The font files of the chain, in the order they are tried (the bundled one first)."""
    files = [BUNDLED / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")]
    installed = _installed()
    for regular, heavy in FALLBACKS:
        path = installed.get(heavy if bold else regular)
        if path is not None:
            files.append(path)
    return files


@lru_cache(maxsize=64)
def _face(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size=max(1, size))


def _bitmap(char: str, font: ImageFont.FreeTypeFont) -> bytes:
    image = Image.new("L", (48, 48))
    ImageDraw.Draw(image).text((4, 4), char, font=font, fill=255)
    return image.tobytes()


@lru_cache(maxsize=32768)
def covers(path: Path, char: str) -> bool:
    """Whether the font file has a glyph of its own for `char` (not its .notdef box)."""
    font = _face(path, 24)
    return _bitmap(char, font) != _bitmap(_NOT_A_CHAR, font)


def _inkless(char: str) -> bool:
    """Characters drawn with their neighbours' font: spaces, marks, joiners."""
    return char.isspace() or category(char)[0] == "M" or category(char) == "Cf"


@lru_cache(maxsize=8192)
def font_index(char: str, bold: bool = False) -> int | None:
    """The first font of the chain that has `char`, or None if none has it."""
    return next((i for i, path in enumerate(chain_files(bold)) if covers(path, char)), None)


def lettered(text: str) -> str:
    """`text` as it will be drawn: every character some font has, the others replaced by
    U+FFFD (and logged once each), never dropped."""
    out = []
    for char in text:
        if _inkless(char) or font_index(char) is not None:
            out.append(char)
            continue
        if char not in _reported:
            _reported.add(char)
            log.warning("no installed font draws U+%04X; it is drawn as U+FFFD", ord(char))
        out.append(REPLACEMENT)
    return "".join(out)


@dataclass(frozen=True)
class Lettering:
    """The chain at one size and weight: measures and draws text like one Pillow font."""

    size: int
    bold: bool = False

    @property
    def primary(self) -> ImageFont.FreeTypeFont:
        """The bundled face: its metrics set line heights and the baseline."""
        return _face(chain_files(self.bold)[0], self.size)

    def getmetrics(self) -> tuple[int, int]:
        """Ascent and descent of the primary face (as Pillow's `getmetrics`)."""
        return self.primary.getmetrics()

    def runs(self, text: str) -> Iterator[tuple[ImageFont.FreeTypeFont, str]]:
        """(font, text) runs of one font each, in order."""
        files = chain_files(self.bold)
        current: int | None = None
        run = ""
        for char in text:
            index = None if _inkless(char) else (font_index(char, self.bold) or 0)
            if index is None or index == current or not run:
                current = current if index is None else index
                run += char
                continue
            yield _face(files[current or 0], self.size), run
            current, run = index, char
        if run:
            yield _face(files[current or 0], self.size), run

    def getlength(self, text: str) -> float:
        """Advance width of `text` in px, run by run."""
        return sum(font.getlength(run) for font, run in self.runs(text))

    def draw(
        self, draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fill: object
    ) -> None:
        """Draw `text` with its top-left at `xy` (the primary face's ascent below it is
        the baseline every run shares)."""
        x, y = xy
        baseline = y + self.getmetrics()[0]
        for font, run in self.runs(text):
            draw.text((x, baseline), run, font=font, fill=fill, anchor="ls")  # type: ignore[arg-type]
            x += font.getlength(run)
