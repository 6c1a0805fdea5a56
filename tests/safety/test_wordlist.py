"""The word list sees through disguises (property-tested) and leaves ordinary words alone."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storyloom.story.moderation import WordList, default_words

# Terms from the default list, each as a member would type it plainly.
TERMS = ["fuck", "porn", "naked", "hentai", "nsfw", "slut", "nigger", "faggot", "nude"]
LEET = {"a": "4@", "e": "3", "i": "1!|", "o": "0", "s": "5$", "t": "7+", "g": "9", "b": "8",
        "l": "1|"}  # fmt: skip
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
MARKS = ["\u0301", "\u0300", "\u0308", "\u0336", "\u0303"]  # accents, strike-through
LOOKALIKE = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і"}
SAFE_WORDS = [
    "the", "lighthouse", "Mira", "walks", "on", "a", "beach", "storm", "class", "assistant",
    "therapist", "Essex", "Scunthorpe", "pen", "is", "grape", "cocktail", "shitake",
    "raccoon", "nudge", "tilts", "Dickens", "as", "passing", "title", "spice", "document",
    "analysis", "button", "sextant", "associate", "night", "fell", "dragon", "ça", "garçon",
    "Straße", "日本", "ночь", "φως",
]  # fmt: skip


@st.composite
def disguised(draw: st.DrawFn, term: str) -> str:
    """The term dressed up the ways people try to slip one past a filter."""
    letters = []
    for char in term:
        if draw(st.booleans()) and char in LEET:
            char = draw(st.sampled_from(LEET[char]))
        elif draw(st.booleans()) and char in LOOKALIKE:
            char = LOOKALIKE[char]
        elif draw(st.booleans()):
            char = char.upper()
        char *= draw(st.integers(1, 3))  # held longer
        char += "".join(draw(st.lists(st.sampled_from(MARKS), max_size=2)))
        char += "".join(draw(st.lists(st.sampled_from(ZERO_WIDTH), max_size=2)))
        letters.append(char)
    spread = draw(st.sampled_from(["", "", " ", ".", "-", "_", "*"]))
    word = spread.join(letters)
    if draw(st.booleans()):
        word = unicodedata.normalize("NFC", word)
    if draw(st.booleans()):  # fullwidth forms
        word = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in word)
    return word


sentences = st.lists(st.sampled_from(SAFE_WORDS), max_size=6).map(" ".join)


@settings(max_examples=500, deadline=None)
@given(data=st.data(), term=st.sampled_from(TERMS), before=sentences, after=sentences)
def test_a_disguised_term_inside_a_sentence_is_refused(
    data: st.DataObject, term: str, before: str, after: str
) -> None:
    word = data.draw(disguised(term))
    text = f"{before} {word}, {after}".strip()
    assert default_words().match(text) is not None, text


@settings(max_examples=300, deadline=None)
@given(text=sentences, punctuation=st.sampled_from(["", ".", "!", "?!", " #", ","]))
def test_ordinary_sentences_pass(text: str, punctuation: str) -> None:
    assert default_words().match(text + punctuation) is None


@pytest.mark.parametrize(
    "text",
    [
        "class",  # holds "ass"
        "The therapist listens",  # holds "rapist"
        "cumulus clouds",  # starts with "cum"
        "as s",  # short words next to each other are not glued together
        "the pen is red",  # two words, not one
        "tilts the lantern",  # "l" is not read as "i" without a reason
        "Essex by night",
    ],
)
def test_words_that_only_contain_a_term_pass(text: str) -> None:
    assert default_words().match(text) is None


@pytest.mark.parametrize(
    "text",
    # disguises the properties above found while this was built, kept as examples
    ["f u c kk", "n @ k e d", "henta!", "faggo+", "a f u c k,", "h_e_n_t_4_!", "s1u+",
     "hen+@i", "sh!t-faced n.u.d.e"],
)  # fmt: skip
def test_disguises_found_by_the_properties_stay_refused(text: str) -> None:
    assert default_words().match(text) is not None


def test_phrases_match_consecutive_words_and_stars_match_endings() -> None:
    words = WordList.of(["dark magic", "grim*"])
    assert words.match("she casts DARK   mágic") == "dark magic"
    assert words.match("dark and magic") is None
    assert words.match("a grimoire") == "grim*"
    assert words.match("a pilgrim") is None


def test_a_servers_terms_add_to_the_default_list() -> None:
    added = default_words().plus(["bananas"])
    assert added.match("b4n4n45 everywhere") == "bananas"
    assert default_words().match("bananas everywhere") is None
    assert added.match("fuuuck") is not None
