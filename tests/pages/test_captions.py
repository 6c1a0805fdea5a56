"""Caption parsing, fitting and what the drawing step actually prints."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from storyloom.generation.layout import (
    PagePanel,
    PageSpec,
    fit_text,
    plan_story,
    render_pages,
    split_caption,
)

from .media import panel_image


def test_dialogue_becomes_a_bubble_and_tags_become_bare_names() -> None:
    narration, dialogue = split_caption('[Mira] opens the door. Mira: "What is this?"')
    assert narration == "Mira opens the door."
    assert dialogue == [("Mira", "What is this?")]


def test_several_speakers_curly_quotes_and_tagged_speakers() -> None:
    _, dialogue = split_caption('Bob: “Careful.” [Mira]: "Always." The Old Man: «Go»')
    assert dialogue == [("Bob", "Careful."), ("Mira", "Always."), ("The Old Man", "Go")]


def test_a_speaker_must_open_a_clause() -> None:
    narration, dialogue = split_caption('Then Mira turned to Bob: "Run!"')
    assert dialogue == [("Bob", "Run!")]
    assert narration == "Then Mira turned to"


def test_colons_without_quotes_stay_narration() -> None:
    assert split_caption("Time: 5 pm. Place: the pier.") == ("Time: 5 pm. Place: the pier.", [])


names = st.text(st.characters(categories=("L",)), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None)
@given(name=names, other=names, line=st.text(max_size=40).filter(lambda s: '"' not in s))
def test_no_name_tag_is_ever_printed(name: str, other: str, line: str) -> None:
    beats = [f"[{name}] meets [{other}].", f'[{name}]: "{line}"', f"A [{other}] title"]
    panels = [PagePanel.from_beat(text, panel_image(i)) for i, text in enumerate(beats)]
    spec = PageSpec(title=f"[{name}] and [{other}]", width=512, height=512, layout="strip")
    printed = [t.text for page in render_pages(panels, spec) for t in page.texts]
    assert printed
    assert not any(f"[{n}]" in text for text in printed for n in (name, other))


def test_a_bubble_is_labelled_with_its_speaker(story_panels: list[PagePanel]) -> None:
    page = render_pages(story_panels[:1], PageSpec(width=512, height=512))[0]
    kinds = [(t.kind, t.text) for t in page.texts]
    assert ("speaker", "Mira") in kinds
    assert ("bubble", "What is this?") in kinds
    assert ("narration", "Mira finds a brass key on the beach.") in kinds


def test_text_shrinks_before_it_is_truncated() -> None:
    short = fit_text("A short line.", 300, 120, 24)
    medium = fit_text("A longer caption that needs several lines to fit. " * 3, 300, 120, 24)
    huge = fit_text("word " * 2000, 300, 120, 24)
    assert short is not None and medium is not None and huge is not None
    assert short.size == 24 and not short.truncated
    assert medium.size < 24 and not medium.truncated
    assert huge.truncated and huge.lines[-1].endswith("…")


def test_ten_thousand_characters_give_a_graceful_page() -> None:
    panels = [PagePanel.from_beat("x" * 10_000, panel_image(0)), PagePanel.from_beat("ok")]
    spec = PageSpec(width=600, height=600)
    pages = render_pages(panels, spec)
    narration = [t.text for t in pages[0].texts if t.kind == "narration"]
    assert narration[-2].endswith("…")  # first panel's box, truncated
    assert sum(len(text) for text in narration) < 10_000
    for plan in plan_story(panels, spec):
        for (_, rect), boxes in zip(plan.frame.panels, plan.captions, strict=True):
            assert all(rect.contains(box.rect) for box in boxes)


def test_emoji_and_right_to_left_text_are_printed_and_a_glyph_no_font_has_is_replaced() -> None:
    # U+0378 is unassigned: no font draws it
    panel = PagePanel.from_beat("Dragon 🐉 says שלום and مرحبا \u0378", panel_image(1))
    page = render_pages([panel], PageSpec(width=512, height=512))[0]
    printed = " ".join(t.text for t in page.texts)
    assert "שלום" in printed and "مرحبا" in printed and "Dragon 🐉 says" in printed
    # a glyph missing from every font is drawn as U+FFFD, never silently dropped
    assert "\u0378" not in printed and printed.count("\ufffd") == 1
