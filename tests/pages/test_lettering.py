"""Lettering in every script the issue names: each drawn with a font that has it, every
glyph leaving ink on the page; a character no font has is replaced visibly and logged."""

from __future__ import annotations

import logging

import pytest
from PIL import Image, ImageChops, ImageDraw

from storyloom.generation.layout import PagePanel, PageSpec, render_pages
from storyloom.generation.pages.lettering import (
    REPLACEMENT,
    Lettering,
    chain_files,
    font_index,
    lettered,
)

from .media import panel_image

SCRIPTS = {
    "Latin": "Ça va, señor? Straße",
    "Cyrillic": "Привет, мир",
    "Greek": "Καλημέρα κόσμε",
    "Arabic": "مرحبا بالعالم",
    "Hebrew": "שלום עולם",
    "Devanagari": "नमस्ते दुनिया",
    "Thai": "สวัสดีชาวโลก",
    "Chinese": "你好，世界",
    "Japanese": "こんにちは、カタカナ漢字",
    "Korean": "안녕하세요 세계",
}


def ink(text: str, lettering: Lettering) -> Image.Image:
    """`text` drawn black on white by the chain."""
    width = int(lettering.getlength(text)) + 8
    image = Image.new("L", (max(width, 8), lettering.size * 2), 255)
    lettering.draw(ImageDraw.Draw(image), (4, 4), text, 0)
    return image


def inked(image: Image.Image) -> bool:
    return ImageChops.invert(image).getbbox() is not None


@pytest.mark.parametrize("script", sorted(SCRIPTS))
@pytest.mark.parametrize("bold", [False, True])
def test_every_script_is_drawn_and_every_glyph_leaves_ink(script: str, bold: bool) -> None:
    text = SCRIPTS[script]
    assert lettered(text) == text  # nothing replaced
    lettering = Lettering(24, bold)
    replacement = ink(REPLACEMENT, lettering).tobytes()
    for char in text:
        if char.isspace() or char in ",，、?" or not char.isprintable():
            continue
        if font_index(char, bold) is None:  # a mark: drawn with its base, not alone
            continue
        drawn = ink(char, lettering)
        assert inked(drawn), f"{script}: U+{ord(char):04X} left no ink"
        assert drawn.tobytes() != replacement, f"{script}: U+{ord(char):04X} is a box"
    assert inked(ink(text, lettering))


def test_the_chain_reaches_past_the_bundled_font_for_cjk_devanagari_and_thai() -> None:
    names = [path.name for path in chain_files()]
    assert names[0] == "DejaVuSans.ttf"
    for char in "漢かカ한नส":  # none of them in DejaVu
        index = font_index(char)
        assert index is not None and index > 0, char


def test_a_japanese_title_and_speech_line_are_printed_on_the_page() -> None:
    panel = PagePanel.from_beat('[ミラ] 扉を開ける # ミラ: "誰かいますか？"', panel_image(0))
    spec = PageSpec(title="灯台の物語", width=512, height=512)
    page = render_pages([panel], spec)[0]
    printed = {(t.kind, t.text) for t in page.texts}
    assert ("bubble", "誰かいますか？") in printed
    assert any(kind == "title" and text == "灯台の物語" for kind, text in printed), printed


@pytest.mark.parametrize("bold", [False, True])
def test_emoji_are_inked_with_their_own_glyph_not_the_replacement(bold: bool) -> None:
    lettering = Lettering(24, bold)
    replacement = ink(REPLACEMENT, lettering).tobytes()
    for char in "😀🎉❤🐉🔥👍":
        assert lettered(char) == char, f"U+{ord(char):04X} has no font"
        drawn = ink(char, lettering)
        assert inked(drawn), f"U+{ord(char):04X} left no ink"
        assert drawn.tobytes() != replacement, f"U+{ord(char):04X} is the replacement"
    shapes = {ink(char, lettering).tobytes() for char in "😀🎉🐉"}
    assert len(shapes) == 3  # each its own glyph, not one shared box


def test_a_caption_with_emoji_is_printed_on_the_page_as_written() -> None:
    panel = PagePanel.from_beat("[Mira] finds the dragon 🐉🔥", panel_image(0))
    page = render_pages([panel], PageSpec(title="Party 🎉", width=512, height=512))[0]
    texts = " ".join(t.text for t in page.texts)
    assert "🐉🔥" in texts and "🎉" in texts and REPLACEMENT not in texts


def test_a_character_no_font_has_is_replaced_visibly_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    private = "\ue000"  # a private-use code point: no font claims it
    with caplog.at_level(logging.WARNING, "storyloom.generation.pages.lettering"):
        assert lettered(f"a{private}b") == f"a{REPLACEMENT}b"
    assert "U+E000" in caplog.text
    assert inked(ink(REPLACEMENT, Lettering(24)))
