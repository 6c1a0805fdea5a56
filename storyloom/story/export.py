"""A story as plain values, and as a story file that `storyloom render` reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tomli_w

from storyloom.story.grammar import TAG, ParsedBeat, parse
from storyloom.story.limits import name_key
from storyloom.story.model import Beat, Character, Story


@dataclass(frozen=True)
class StoryExport:
    """Everything needed to render the story again elsewhere."""

    story: Story
    characters: tuple[Character, ...]
    beats: tuple[Beat, ...]

    def to_toml(self) -> str:
        """The story file (title, style, seed, characters, panels), tags spelled as cast."""
        spelled = {name_key(c.name): c.name for c in self.characters}

        def canonical(text: str) -> str:
            return TAG.sub(lambda m: f"[{spelled.get(name_key(m.group(1)), m.group(1))}]", text)

        def panel(parsed: ParsedBeat, author: str) -> dict[str, str]:
            # A story file needs a scene in every panel; a caption-only beat draws its caption.
            scene = parsed.scene or parsed.caption
            return {
                "scene": canonical(scene),
                "caption": canonical(parsed.caption),
                "author": author,
            }

        document: dict[str, Any] = {
            "title": self.story.title,
            "style": self.story.style,
            "seed": self.story.seed,
            "characters": [
                {"name": c.name, "description": c.description, "seed": c.seed}
                for c in self.characters
            ],
            "panels": [panel(parse(beat.text), beat.author_name) for beat in self.beats],
        }
        if not document["characters"]:
            del document["characters"]
        if not document["panels"]:
            del document["panels"]
        header = (
            f"# Exported from storyloom: {len(self.beats)} beats by "
            f"{len({b.author_id for b in self.beats})} members.\n"
        )
        return header + tomli_w.dumps(document)
