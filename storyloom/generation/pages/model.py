"""What the page and clip builders take (plain frozen values) and the errors they raise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from PIL import Image

Layout = Literal["grid", "strip", "classic", "vertical"]
LAYOUTS: tuple[str, ...] = get_args(Layout)
Color = str | tuple[int, int, int]

# Below 256 px a page cannot hold a header, a footer and readable panels; above 8192 px
# a page is hundreds of MiB in memory and no chat platform accepts it.
MIN_PAGE_PX = 256
MAX_PAGE_PX = 8192
MAX_GUTTER_PX = 128
MAX_BORDER_PX = 32
# Default panels per page for each layout; beyond that a story continues on a new page.
DEFAULT_PER_PAGE: dict[str, int] = {"grid": 9, "strip": 4, "classic": 7, "vertical": 4}
MAX_PER_PAGE = 16
# Default page sizes per layout: portrait pages, a wide strip, a tall phone column.
DEFAULT_SIZE: dict[str, tuple[int, int]] = {
    "grid": (1200, 1600),
    "classic": (1200, 1600),
    "strip": (1600, 600),
    "vertical": (800, 2400),
}


class LayoutError(ValueError):
    """A page cannot be laid out from these inputs; the message says what to change."""


class EmptyStoryError(LayoutError):
    """The story has no panels to lay out."""


@dataclass(frozen=True)
class PagePanel:
    """One panel: its image (None draws a placeholder), narration and dialogue.

    `prompt`, `characters` and `seed` are what a motion backend needs to render
    in-betweens; `author` and `beat` feed the `story.md` export.
    """

    image: Image.Image | None
    caption: str = ""
    dialogue: tuple[tuple[str, str], ...] = ()
    author: str = ""
    beat: str = ""
    prompt: str = ""
    characters: tuple[str, ...] = ()
    seed: int | None = None

    @classmethod
    def from_beat(
        cls,
        text: str,
        image: Image.Image | None = None,
        *,
        author: str = "",
        prompt: str = "",
        characters: tuple[str, ...] = (),
        seed: int | None = None,
    ) -> PagePanel:
        """Build a panel from raw beat text: `[Name]` tags dropped, `Name: "line"` → bubbles."""
        from storyloom.generation.pages.captions import split_caption

        narration, dialogue = split_caption(text)
        return cls(
            image=image,
            caption=narration,
            dialogue=tuple(dialogue),
            author=author,
            beat=text,
            prompt=prompt,
            characters=characters,
            seed=seed,
        )


@dataclass(frozen=True)
class PageSpec:
    """How pages look: title, credits, layout, size, gutters, borders, background, seed."""

    title: str = ""
    contributors: tuple[str, ...] = ()
    layout: Layout = "grid"
    width: int | None = None  # None: the layout's default size (DEFAULT_SIZE)
    height: int | None = None
    gutter: int = 16
    border: int = 3
    background: Color = "white"
    border_color: Color = "black"
    seed: int = 0
    panels_per_page: int | None = None

    def per_page(self) -> int:
        """Panels on a full page for this spec's layout."""
        return self.panels_per_page or DEFAULT_PER_PAGE[self.layout]

    def size(self) -> tuple[int, int]:
        """(width, height) in px, the layout's default where unset; validated."""
        self.validate()
        default_w, default_h = DEFAULT_SIZE[self.layout]
        return self.width or default_w, self.height or default_h

    def validate(self) -> None:
        """Raise LayoutError naming the allowed range if any setting is out of range."""
        if self.layout not in LAYOUTS:
            raise LayoutError(f"unknown layout {self.layout!r}; choose one of {', '.join(LAYOUTS)}")
        for name, value in (("width", self.width), ("height", self.height)):
            if value is not None and not MIN_PAGE_PX <= value <= MAX_PAGE_PX:
                raise LayoutError(
                    f"page {name} {value} px is out of range; use {MIN_PAGE_PX}–{MAX_PAGE_PX} px"
                )
        if not 0 <= self.gutter <= MAX_GUTTER_PX:
            raise LayoutError(f"gutter {self.gutter} px is out of range; use 0–{MAX_GUTTER_PX} px")
        if not 0 <= self.border <= MAX_BORDER_PX:
            raise LayoutError(f"border {self.border} px is out of range; use 0–{MAX_BORDER_PX} px")
        if self.panels_per_page is not None and not 1 <= self.panels_per_page <= MAX_PER_PAGE:
            raise LayoutError(
                f"panels per page {self.panels_per_page} is out of range; use 1–{MAX_PER_PAGE}"
            )
