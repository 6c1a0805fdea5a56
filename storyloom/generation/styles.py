"""Style presets: a positive template around the panel prompt and a negative prompt."""

from __future__ import annotations

from dataclasses import dataclass

_COMMON_NEGATIVE = "blurry, lowres, jpeg artifacts, watermark, signature, text, deformed hands"


@dataclass(frozen=True)
class Style:
    """A named look applied to every panel and identity image of a story."""

    name: str
    template: str  # contains "{prompt}"
    negative: str

    def apply(self, prompt: str) -> str:
        """The panel prompt wrapped in this style."""
        return self.template.replace("{prompt}", prompt)


STYLES: dict[str, Style] = {
    style.name: style
    for style in (
        Style(
            "comic",
            "comic book panel, {prompt}, bold ink outlines, flat vivid colours, halftone shading",
            f"photo, realistic, 3d render, {_COMMON_NEGATIVE}",
        ),
        Style(
            "manga",
            "manga panel, {prompt}, black and white, screentone, expressive ink lines",
            f"colour, photo, realistic, {_COMMON_NEGATIVE}",
        ),
        Style(
            "cinematic",
            "cinematic film still, {prompt}, dramatic lighting, shallow depth of field, 35mm",
            f"cartoon, drawing, anime, {_COMMON_NEGATIVE}",
        ),
        Style(
            "watercolor",
            "watercolour illustration, {prompt}, soft washes, paper texture, gentle palette",
            f"photo, hard edges, 3d render, {_COMMON_NEGATIVE}",
        ),
        Style(
            "storybook",
            "children's picture book illustration, {prompt}, warm colours, gouache, whimsical",
            f"photo, grim, horror, {_COMMON_NEGATIVE}",
        ),
        Style(
            "noir",
            "film noir frame, {prompt}, high contrast black and white, venetian blind shadows",
            f"colour, bright, cheerful, {_COMMON_NEGATIVE}",
        ),
        Style(
            "anime",
            "anime key visual, {prompt}, clean cel shading, luminous sky, detailed background",
            f"photo, realistic skin, 3d render, {_COMMON_NEGATIVE}",
        ),
        Style(
            "pixel",
            "pixel art scene, {prompt}, 16-bit palette, crisp pixels, retro game",
            f"smooth gradients, photo, blurry pixels, {_COMMON_NEGATIVE}",
        ),
        Style(
            "lineart",
            "clean line art, {prompt}, black ink on white, no shading, elegant contours",
            f"colour, shading, photo, {_COMMON_NEGATIVE}",
        ),
        Style(
            "photo",
            "photograph, {prompt}, natural light, 50mm lens, high detail",
            f"drawing, painting, cartoon, anime, {_COMMON_NEGATIVE}",
        ),
    )
}
STYLE_NAMES = frozenset(STYLES)


def get_style(name: str) -> Style:
    """The preset called ``name``; a clear KeyError-free message if there is none."""
    try:
        return STYLES[name]
    except KeyError:
        raise ValueError(
            f"unknown style {name!r}; choose one of: {', '.join(sorted(STYLES))}"
        ) from None
