"""The beat grammar shared by every adapter.

    [Mira] and [Old Tom] light the lamp # The sea went quiet. Mira: "We did it!"

`[Name]` tags mark who is in the scene; the text after the first ` # ` is the caption;
`Name: "line"` in the caption is dialogue. `parse` never fails on any text: whether the
names exist in the cast is the service's question, not the grammar's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from storyloom.story.limits import name_key

_NAME = r"[^\W_]+(?: +[^\W_]+)*"
TAG = re.compile(rf"\[ *({_NAME}) *\]")
# The caption starts at the first `#` standing alone (start of text or whitespace around).
_SEPARATOR = re.compile(r"(?:^|\s)#(?:\s|$)")
# A speaker label is one to three words; the line is in straight, curly, low-9 or
# guillemet quotes.
_DIALOGUE = re.compile(
    r"(?P<speaker>[^\W_]+(?: +[^\W_]+){0,2})[ \t]*:[ \t]*"
    r"(?:\"(?P<straight>[^\"]*)\"|[“„](?P<curly>[^”“]*)[”“]|«(?P<guillemet>[^»]*)»)"
)
# A speaker opens a clause: "Night. Mira: …" names Mira, "then Mira said: …" names `said`'s
# last word only, so narration is never swallowed into a speaker label.
_CLAUSE_END = tuple('.!?;:…"”)\n')


@dataclass(frozen=True)
class Line:
    """One line of dialogue."""

    speaker: str
    text: str


@dataclass(frozen=True)
class ParsedBeat:
    """A beat split into its parts; `scene` and `caption` are kept exactly as written."""

    scene: str
    caption: str
    characters: tuple[str, ...]
    narration: str
    dialogue: tuple[Line, ...]

    @property
    def prompt(self) -> str:
        """The scene with tags replaced by bare names: what the renderer draws."""
        return strip_tags(self.scene)


def strip_tags(text: str) -> str:
    """Replace every `[Name]` tag with the bare name."""
    return TAG.sub(lambda match: " ".join(match.group(1).split()), text)


def tagged_names(text: str) -> tuple[str, ...]:
    """Names tagged in `text`, first appearance first, each once (case-insensitively)."""
    seen: dict[str, str] = {}
    for match in TAG.finditer(text):
        name = " ".join(match.group(1).split())
        seen.setdefault(name_key(name), name)
    return tuple(seen.values())


def _collapse(text: str) -> str:
    return " ".join(text.split())


def split_caption(caption: str) -> tuple[str, tuple[Line, ...]]:
    """Caption text → (narration, dialogue lines); `[Name]` tags become bare names."""
    text = strip_tags(caption)
    narration: list[str] = []
    lines: list[Line] = []
    pos = 0
    for match in _DIALOGUE.finditer(text):
        before = text[pos : match.start()].rstrip()
        speaker = match.group("speaker")
        if before and not before.endswith(_CLAUSE_END):
            head, _, speaker = speaker.rpartition(" ")
            before = f"{before} {head}" if head else before
        said = next(
            match.group(kind)
            for kind in ("straight", "curly", "guillemet")
            if match.group(kind) is not None
        )
        if said.strip():
            lines.append(Line(_collapse(speaker), _collapse(said)))
        narration.append(before)
        pos = match.end()
    narration.append(text[pos:])
    return _collapse(" ".join(narration)), tuple(lines)


def parse(text: str) -> ParsedBeat:
    """Split beat text into scene, caption, tagged characters, narration and dialogue."""
    separator = _SEPARATOR.search(text)
    if separator is None:
        scene, caption = text.strip(), ""
    else:
        scene, caption = text[: separator.start()].strip(), text[separator.end() :].strip()
    narration, dialogue = split_caption(caption)
    return ParsedBeat(
        scene=scene,
        caption=caption,
        characters=tagged_names(f"{scene}\n{caption}"),
        narration=narration,
        dialogue=dialogue,
    )


def format(beat: ParsedBeat) -> str:
    """Beat text that parses back to `beat` (scene, then ` # ` and the caption if any)."""
    if not beat.caption:
        return beat.scene
    return f"{beat.scene} # {beat.caption}" if beat.scene else f"# {beat.caption}"
