"""Caption text: `[Name]` tags and `Name: "line"` dialogue, the lettering chain, wrap and fit."""

from __future__ import annotations

from dataclasses import dataclass
from unicodedata import category

from storyloom.generation.pages.lettering import Lettering, lettered
from storyloom.story import grammar
from storyloom.story.grammar import strip_tags

ELLIPSIS = "…"
MIN_FONT_PX = 8


def split_caption(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Split caption text into (narration, [(speaker, line), …]) with the beat grammar."""
    narration, lines = grammar.split_caption(text)
    return narration, [(line.speaker, line.text) for line in lines]


def load_font(size: int, bold: bool = False) -> Lettering:
    """The lettering chain at `size` px (bold for titles and speaker labels): the bundled
    DejaVu Sans first, then the installed Noto families (see lettering.py)."""
    return Lettering(max(1, size), bold)


def printable(text: str) -> str:
    """Text as printed: tags stripped, whitespace collapsed, a glyph no font has shown as
    U+FFFD (never dropped)."""
    # Format characters (zero-width joiners, bidi marks) have no ink; raqm does the bidi.
    text = strip_tags(text)
    kept = "".join(ch for ch in text if ch.isspace() or category(ch) != "Cf")
    return " ".join(lettered(kept).split())


def line_height(font: Lettering) -> int:
    """Distance between baselines of wrapped lines."""
    ascent, descent = font.getmetrics()
    return round((ascent + descent) * 1.1)


def _max_chars(font: Lettering, width: float) -> int:
    # No visible DejaVu glyph is narrower than 0.2 em, so longer strings cannot fit and
    # need not be measured (keeps a 10,000-char "word" from being shaped again and again).
    return int(width / (font.size * 0.2)) + 2


def _break_word(word: str, font: Lettering, width: float) -> tuple[str, str]:
    """The longest prefix of `word` (at least one char) that fits `width`, and the rest."""
    lo, hi = 1, min(len(word), _max_chars(font, width))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if font.getlength(word[:mid]) <= width:
            lo = mid
        else:
            hi = mid - 1
    if lo == 1 and font.getlength(word[:1]) > width:
        return "", word[1:]  # a glyph wider than the whole line (e.g. U+FDFD) is dropped
    return word[:lo], word[lo:]


def wrap(text: str, font: Lettering, width: float, max_lines: int) -> tuple[list[str], bool]:
    """Greedy word wrap into at most `max_lines` lines; True when text was left over."""
    lines: list[str] = []
    words = text.split()
    current = ""
    i = 0
    limit = _max_chars(font, width)
    while i < len(words):
        word = words[i]
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= limit and font.getlength(candidate) <= width:
            current, i = candidate, i + 1
            continue
        if current:
            lines.append(current)
            current = ""
        else:  # a single word wider than the line: break it
            head, rest = _break_word(word, font, width)
            if head:
                lines.append(head)
            words[i] = rest
            if not rest:
                i += 1
        if len(lines) >= max_lines:
            return lines, True
    if current:
        if len(lines) >= max_lines:
            return lines, True
        lines.append(current)
    return lines, False


def ellipsize(line: str, font: Lettering, width: float) -> str:
    """`line` cut so that it plus "…" fits `width` (just "…" if nothing else fits)."""
    while line and font.getlength(line + ELLIPSIS) > width:
        line = line[:-1]
    return line.rstrip() + ELLIPSIS


@dataclass(frozen=True)
class FittedText:
    """Lines that fit a box at `size` px; `truncated` when "…" ended the text early."""

    lines: tuple[str, ...]
    size: int
    line_height: int
    truncated: bool
    bold: bool = False

    @property
    def height(self) -> int:
        """Height of the text block in px."""
        return self.line_height * len(self.lines)


def fit_text(
    text: str,
    width: int,
    height: int,
    max_size: int,
    *,
    reserved_lines: int = 0,
    bold: bool = False,
) -> FittedText | None:
    """Wrap `text` into `width`×`height`, shrinking to MIN_FONT_PX, then truncating with "…".

    `reserved_lines` leaves room for a label above the text. None when not even one line
    fits (the caller drops the box rather than overflow the panel).
    """
    text = printable(text)
    size = max(max_size, MIN_FONT_PX)
    while True:
        font = load_font(size, bold)
        step = line_height(font)
        max_lines = height // step - reserved_lines
        if max_lines >= 1 and width >= font.getlength("W" + ELLIPSIS):
            lines, over = wrap(text, font, width, max_lines)
            if not over or size == MIN_FONT_PX:
                if over:
                    lines[-1] = ellipsize(lines[-1], font, width)
                return FittedText(tuple(lines), size, step, over, bold)
        if size == MIN_FONT_PX:
            return None
        size = max(MIN_FONT_PX, min(size - 1, int(size * 0.9)))
