"""What the reader page shows, as plain values: built from the database for a share link,
or from the rendered panels for the static export; the template draws either the same way.

Every string here is member-written text as typed: the template escapes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from storyloom.story.grammar import parse, strip_tags


@dataclass(frozen=True)
class Panel:
    """One panel as a reader hears it: its number, its beat in words, and who wrote it."""

    number: int
    alt: str
    author: str


@dataclass(frozen=True)
class Page:
    """One page image and the panels drawn on it."""

    number: int
    src: str
    panels: tuple[Panel, ...]

    @property
    def alt(self) -> str:
        """The page's alt text: each panel's beat, in order."""
        told = [f"Panel {p.number}: {p.alt}" for p in self.panels]
        return " ".join([f"Page {self.number}.", *told])


@dataclass(frozen=True)
class CastMember:
    """A character, its description and the images of its sheet."""

    name: str
    description: str
    sheets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Credit:
    """A member and the beats they wrote ("1, 3–4")."""

    name: str
    beats: str


@dataclass(frozen=True)
class ReaderView:
    """The whole reader page."""

    title: str
    pages: tuple[Page, ...]
    cast: tuple[CastMember, ...] = ()
    credits: tuple[Credit, ...] = ()
    clip_src: str | None = None


def panel_alt(beat: str) -> str:
    """A beat told in words: its scene and caption, `[Name]` tags as bare names."""
    parsed = parse(beat)
    parts = [strip_tags(part).strip() for part in (parsed.scene, parsed.caption)]
    return ". ".join(part for part in parts if part) or "An empty panel."


def positions(numbers: Iterable[int]) -> str:
    """Beat numbers as short ranges: 1, 3–5, 8."""
    ordered = sorted(set(numbers))
    runs: list[list[int]] = []
    for n in ordered:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}–{r[-1]}" for r in runs)


def credits(authors: Sequence[tuple[int, str]]) -> tuple[Credit, ...]:
    """(beat number, author) pairs as one credit per author, in order of first beat."""
    by_author: dict[str, list[int]] = {}
    for number, author in authors:
        by_author.setdefault(author, []).append(number)
    return tuple(Credit(name, positions(numbers)) for name, numbers in by_author.items())


def pages(
    srcs: Sequence[str], panels: Sequence[Panel], per_page: Sequence[Sequence[int]]
) -> tuple[Page, ...]:
    """Pages from their image addresses and which panel indices each one shows (every
    image is a page, even one the panel plan does not cover)."""
    plan = [*per_page, *([()] * (len(srcs) - len(per_page)))]
    return tuple(
        Page(number, src, tuple(panels[i] for i in indices if i < len(panels)))
        for number, (src, indices) in enumerate(zip(srcs, plan, strict=False), start=1)
    )
