"""A story as plain values, and as a story file that `storyloom render` reads."""

from __future__ import annotations

from dataclasses import dataclass

from storyloom.story.grammar import TAG, parse
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

        lines = [
            f"# Exported from storyloom: {len(self.beats)} beats by "
            f"{len({b.author_id for b in self.beats})} members.",
            f"title = {toml_string(self.story.title)}",
            f"style = {toml_string(self.story.style)}",
            f"seed = {self.story.seed}",
        ]
        for character in self.characters:
            lines += [
                "",
                "[[characters]]",
                f"name = {toml_string(character.name)}",
                f"description = {toml_string(character.description)}",
                f"seed = {character.seed}",
            ]
        for beat in self.beats:
            parsed = parse(beat.text)
            # A story file needs a scene in every panel; a caption-only beat draws its caption.
            scene = parsed.scene or parsed.caption
            lines += [
                "",
                "[[panels]]",
                f"scene = {toml_string(canonical(scene))}",
                f"caption = {toml_string(canonical(parsed.caption))}",
                f"author = {toml_string(beat.author_name)}",
            ]
        return "\n".join(lines) + "\n"


def toml_string(text: str) -> str:
    """A TOML basic string holding `text` exactly."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
