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
MAX_SPACED = 24  # letters of a spaced-out run read together (longer runs: their start)

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
_SYMBOL_IN_WORD = re.compile(r"[@$!|+€£](?=[@$!|+€£]*\w)|(?<!\w)[@$!|+€£]")
_ANY_SYMBOL = re.compile(r"[@$!|+€£]")
_SYMBOL_ENDED = re.compile(r"(?<![\w@$!|+€£])[\w@$!|+€£]*[^\W_][@$!|+€£]+(?!\w)")
_AMBIGUOUS = re.compile(r"[1|]|!(?=\w)")
_LETTERS = re.compile(r"[^\W\d_]+")
_CHUNKS = re.compile(r"\S+")
_REPEATS = re.compile(r"(.)\1+")
_WORD_START = r"(?<![^\W\d_])"
_WORD_END = r"(?![^\W\d_])"
# letters, then (punctuation, digits left over, or underscores, then letters) at least once
_GLUED = re.compile(r"(?<![^\W\d_])[^\W\d_]+(?:(?:[^\w\s]|[\d_])+[^\W\d_]+)+")
# two or more one-letter words (each letter perhaps held), whatever separates them
_SINGLES = re.compile(r"(?:\b([^\W\d_])\1*\b\W*){2,}")


class Refused(StoryError):
    """The text matches the word list; it was neither stored nor queued."""

    def __init__(self, what: str = "text") -> None:
        super().__init__(REFUSED)
        self.what = what


def _fold(text: str) -> str:
    """Compatibility forms folded, marks and format characters dropped, case folded, and
    underscores read as spaces (a separator, not a letter)."""
    if text.isascii():  # most beats: nothing to decompose, no marks, no format characters
        return text.lower().replace("_", " ")
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Me", "Cf"))
    return kept.casefold().replace("_", " ")


def skeletons(text: str) -> tuple[str, ...]:
    """The text's readings for matching. Symbols that end a word are read as punctuation
    here (`WordList.match` also reads those words with the symbol as a letter: "henta!");
    a text holding "1", "|" or a "!" inside a word is also read with them as "l" ("s1ut")."""
    return _readings(_fold(text))


def _readings(folded: str) -> tuple[str, ...]:
    first = _SYMBOL_IN_WORD.sub(_symbol, folded).translate(_MAP)
    if not _AMBIGUOUS.search(folded):
        return (first,)
    return first, _SYMBOL_IN_WORD.sub(_symbol, folded.translate(_AS_L)).translate(_MAP)


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
    return _REPEATS.sub(r"\1", word)


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
    # one regex over the whole squashed text finds where a term could start, so the word
    # by word check runs only for the rare text that holds a candidate
    _screen: re.Pattern[str] = field(init=False, compare=False, repr=False)
    _prefixed: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        starts = set()
        for term in self.terms:
            first = term.keys[0]
            if term.prefix and len(term.keys) == 1:
                self._prefix.setdefault(len(first), {}).setdefault(first, []).append(term)
                starts.add(re.escape(first))
            else:
                self._exact.setdefault(first, []).append(term)
                starts.add(re.escape(first) + _WORD_END)
        screen = "|".join(sorted(starts, key=len, reverse=True)) or "(?!)"
        object.__setattr__(self, "_screen", re.compile(f"{_WORD_START}(?:{screen})"))
        prefixes = "|".join(re.escape(k) for by_length in self._prefix.values() for k in by_length)
        object.__setattr__(self, "_prefixed", re.compile(f"(?:{prefixes or '(?!)'})"))

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
        folded = _fold(text)
        for skeleton in _readings(folded):
            found = self._match_skeleton(skeleton)
            if found is not None:
                return found
        ended_words = _SYMBOL_ENDED.findall(folded) if _ANY_SYMBOL.search(folded) else ()
        for ended in ended_words:  # "henta!", "faggo+", "s1u+" (1 read both ways)
            for reading in {ended, ended.translate(_AS_L)}:
                letters = _ANY_SYMBOL.sub(_symbol, reading).translate(_MAP)
                word = "".join(_LETTERS.findall(letters))
                if word and (found := self._word(word, [word], 0)) is not None:
                    return found
        return None

    def _match_skeleton(self, skeleton: str) -> str | None:
        if self._screen.search(_squash(skeleton)):
            tokens = _LETTERS.findall(skeleton)
            for index, word in enumerate(tokens):
                if (found := self._word(word, tokens, index)) is not None:
                    return found
        for joined in _joined(skeleton):
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
        if not self._prefixed.match(key):  # no prefix term starts this word
            return None
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


def _joined(skeleton: str) -> Iterator[str]:
    """Words read across separators: letters glued through punctuation ("sh.it"), and runs
    of single (perhaps held) letters ("f u c k", "f.u.c.k", "f u c kk")."""
    for found in _GLUED.finditer(skeleton):
        yield "".join(_LETTERS.findall(found.group()))
    spaced = skeleton.replace("_", " ")  # so \b separates "f_u_c_k"
    for found in _SINGLES.finditer(spaced):
        # every stretch of the run: "a f u c k" holds "fuck" after the word "a"
        letters = _LETTERS.findall(found.group())[:MAX_SPACED]
        for start in range(len(letters) - 1):
            for end in range(start + 2, len(letters) + 1):
                yield "".join(letters[start:end])


@cache
def default_words() -> WordList:
    """The bundled default list (storyloom/story/data/wordlist.txt)."""
    text = resources.files("storyloom.story").joinpath("data/wordlist.txt").read_text("utf-8")
    return WordList.of(text.splitlines())


def check_text(words: WordList, text: str, what: str = "text") -> None:
    """Raise `Refused` if the text uses a listed term."""
    if words.match(text) is not None:
        raise Refused(what)
