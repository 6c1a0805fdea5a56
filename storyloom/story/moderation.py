"""Text moderation: a word list that sees through the usual disguises.

Text and terms are reduced to the same *skeleton* before they are compared: Unicode
compatibility forms folded (fullwidth, ligatures), accents and other combining marks and
zero-width/format characters dropped, case folded, look-alike Cyrillic and Greek letters
and leetspeak digits/symbols mapped to Latin letters. A word then matches a term when it
spells the term with any letter held longer ("fuuuck"), so "ass" never matches "as".
Words split by punctuation ("sh.it") are also read joined, and so are runs of single
letters ("f u c k", "f.u.c.k"). Terms match whole words (a trailing `*` allows any
ending), so "class" and "therapist" are not refused: the Scunthorpe problem is avoided at
the price of missing terms glued inside longer words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from storyloom.story.errors import StoryError

MAX_TERM_CHARS = 64
MAX_ADDED_TERMS = 200

# The one sentence a refused text gets: it names no term (repeating it helps nobody).
REFUSED = "That text can't be used here: it matches this server's word list."

# Look-alike letters of other scripts, after case folding.
_HOMOGLYPHS = dict(
    zip(
        "аеорсухіјѕԁɡкмнтвαονρτυικεχ",
        "aeopcyxijsdgkmhtbaovptuikex",
        strict=True,
    )
)
_DIGITS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}
_SYMBOLS = {"@": "a", "$": "s", "!": "i", "|": "i", "+": "t", "€": "e", "£": "l"}
_MAP = str.maketrans({**_HOMOGLYPHS, **_DIGITS})
# "1", "|" and "!" read as "i" or as "l": a text holding one is read both ways.
_AS_L = str.maketrans({"1": "l", "|": "l", "!": "l"})
# A symbol stands for a letter unless it ends a word: "cum!" keeps its "!", "$lut",
# "sh!t" and a lone "@" in "n @ k e d" do not.
_SYMBOL_IN_WORD = re.compile(r"[@$!|+€£](?=\w)|(?<!\w)[@$!|+€£]")
_ANY_SYMBOL = re.compile(r"[@$!|+€£]")
_LETTERS = re.compile(r"[^\W\d_]+")
_CHUNKS = re.compile(r"\S+")


class Refused(StoryError):
    """The text matches the word list; it was neither stored nor queued."""

    def __init__(self, what: str = "text") -> None:
        super().__init__(REFUSED)
        self.what = what


def _fold(text: str) -> str:
    """Compatibility forms folded, marks and format characters dropped, case folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Me", "Cf"))
    return kept.casefold()


def skeletons(text: str) -> tuple[str, ...]:
    """The text's readings for matching. Symbols that end a word are read as punctuation;
    a text holding symbols is also read with every symbol a letter ("henta!"), and one
    holding "1", "|" or "!" with those as "l" ("s1ut")."""
    folded = _fold(text)
    readings = [_SYMBOL_IN_WORD.sub(_symbol, folded).translate(_MAP)]
    if _ANY_SYMBOL.search(folded):
        readings.append(_ANY_SYMBOL.sub(_symbol, folded).translate(_MAP))
    if any(c in folded for c in "1|!"):
        readings.append(_SYMBOL_IN_WORD.sub(_symbol, folded.translate(_AS_L)).translate(_MAP))
    return tuple(readings)


def _symbol(found: re.Match[str]) -> str:
    return _SYMBOLS[found.group()]


def _runs(word: str) -> tuple[tuple[str, int], ...]:
    """Run-length form: "fuuck" → (f,1)(u,2)(c,1)(k,1)."""
    runs: list[tuple[str, int]] = []
    for char in word:
        if runs and runs[-1][0] == char:
            runs[-1] = (char, runs[-1][1] + 1)
        else:
            runs.append((char, 1))
    return tuple(runs)


def _squash(word: str) -> str:
    """The word with every run cut to one letter: the index key."""
    return "".join(char for char, _ in _runs(word))


def _spells(
    term: tuple[tuple[str, int], ...], word: tuple[tuple[str, int], ...], prefix: bool
) -> bool:
    """Whether the word spells the term, letters held at least as long (any ending if
    `prefix`)."""
    if len(word) < len(term) or (not prefix and len(word) != len(term)):
        return False
    return all(w[0] == t[0] and w[1] >= t[1] for t, w in zip(term, word, strict=False))


@dataclass(frozen=True)
class _Term:
    text: str  # as listed
    words: tuple[tuple[tuple[str, int], ...], ...]  # each word's runs
    keys: tuple[str, ...]  # each word squashed
    prefix: bool  # the last word may go on


def _compile(raw: str) -> _Term | None:
    text = raw.strip()
    prefix = text.endswith("*")
    (skeleton, *_) = skeletons(text.rstrip("*"))
    words = _LETTERS.findall(skeleton)
    if not words:
        return None
    runs = tuple(_runs(w) for w in words)
    return _Term(text, runs, tuple(_squash(w) for w in words), prefix)


@dataclass(frozen=True)
class WordList:
    """Terms to refuse, indexed by their first word's squashed spelling."""

    terms: tuple[_Term, ...]
    _exact: dict[str, list[_Term]] = field(default_factory=dict, compare=False, repr=False)
    _prefix: dict[int, dict[str, list[_Term]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        for term in self.terms:
            first = term.keys[0]
            if term.prefix and len(term.keys) == 1:
                self._prefix.setdefault(len(first), {}).setdefault(first, []).append(term)
            else:
                self._exact.setdefault(first, []).append(term)

    @classmethod
    def of(cls, lines: Iterable[str]) -> WordList:
        """A list from lines of terms (blank lines and `#` comments skipped)."""
        terms = []
        for line in lines:
            if line.strip() and not line.lstrip().startswith("#"):
                term = _compile(line)
                if term is not None:
                    terms.append(term)
        return cls(tuple(terms))

    def plus(self, additions: Sequence[str]) -> WordList:
        """This list with a server's own terms added."""
        if not additions:
            return self
        return WordList(self.terms + WordList.of(additions).terms)

    def match(self, text: str) -> str | None:
        """The listed term the text uses, or None."""
        for skeleton in skeletons(text):
            found = self._match_skeleton(skeleton)
            if found is not None:
                return found
        return None

    def _match_skeleton(self, skeleton: str) -> str | None:
        tokens = _LETTERS.findall(skeleton)
        for index, word in enumerate(tokens):
            if (found := self._word(word, tokens, index)) is not None:
                return found
        for joined in _joined(skeleton, tokens):
            if (found := self._word(joined, [joined], 0)) is not None:
                return found
        return None

    def _word(self, word: str, tokens: Sequence[str], index: int) -> str | None:
        key = _squash(word)
        runs: tuple[tuple[str, int], ...] | None = None
        for term in self._exact.get(key, ()):
            runs = runs or _runs(word)
            if _spells(term.words[0], runs, term.prefix and len(term.words) == 1) and (
                len(term.words) == 1 or _rest_follows(term, tokens, index)
            ):
                return term.text
        for length, terms in self._prefix.items():
            for term in terms.get(key[:length], ()):
                runs = runs or _runs(word)
                if _spells(term.words[0], runs, True):
                    return term.text
        return None


def _rest_follows(term: _Term, tokens: Sequence[str], index: int) -> bool:
    """Whether a phrase's later words follow word `index`."""
    rest = tokens[index + 1 : index + len(term.words)]
    if len(rest) != len(term.words) - 1:
        return False
    last = len(term.words) - 2
    return all(
        _spells(term.words[i + 1], _runs(word), term.prefix and i == last)
        for i, word in enumerate(rest)
    )


def _joined(skeleton: str, tokens: Sequence[str]) -> Iterator[str]:
    """Words read across separators: a chunk's letters glued ("sh.it"), and runs of single
    letters ("f u c k", "f.u.c.k")."""
    for chunk in _CHUNKS.findall(skeleton):
        parts = _LETTERS.findall(chunk)
        if len(parts) > 1:
            yield "".join(parts)
    run: list[str] = []
    for token in [*tokens, ""]:
        if token and len(set(token)) == 1:  # one letter, perhaps held ("f u c kk")
            run.append(token)
            continue
        if len(run) > 1:
            yield "".join(run)
        run = []


@cache
def default_words() -> WordList:
    """The bundled default list (storyloom/story/data/wordlist.txt)."""
    text = resources.files("storyloom.story").joinpath("data/wordlist.txt").read_text("utf-8")
    return WordList.of(text.splitlines())


def check_text(words: WordList, text: str, what: str = "text") -> None:
    """Raise `Refused` if the text uses a listed term."""
    if words.match(text) is not None:
        raise Refused(what)
