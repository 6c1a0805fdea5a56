"""Readers for the deployment files, for tests that run without a Docker engine: the
Dockerfile's stages and instructions, the compose file's services, and the `${VAR}`
interpolations both use."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parent.parent.parent
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


@dataclass
class Stage:
    """One `FROM … AS name` stage and its instructions, in order."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [text for kw, text in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        """Every ENV key=value of the stage (later ones win)."""
        found: dict[str, str] = {}
        for text in self.all("ENV"):
            for pair in shlex.split(text):
                key, _, value = pair.partition("=")
                found[key] = value
        return found

    def volumes(self) -> list[str]:
        found: list[str] = []
        for text in self.all("VOLUME"):
            found += json.loads(text) if text.startswith("[") else text.split()
        return found


@dataclass
class Dockerfile:
    args: dict[str, str]  # the ARGs declared before the first FROM, with their defaults
    stages: dict[str, Stage]

    def resolve(self, text: str) -> str:
        """`text` with the global ARGs replaced by their defaults."""
        return _VARIABLE.sub(lambda m: self.args.get(m.group(1) or m.group(4), m.group(0)), text)

    def command(self, stage: str) -> list[str]:
        """ENTRYPOINT + CMD of a stage (exec form)."""
        found = self.stages[stage]
        entry = [json.loads(t) for t in found.all("ENTRYPOINT")][-1:] or [[]]
        cmd = [json.loads(t) for t in found.all("CMD")][-1:] or [[]]
        return [*entry[0], *cmd[0]]

    def healthcheck(self, stage: str) -> list[str]:
        """The exec-form command of a stage's HEALTHCHECK."""
        text = self.stages[stage].all("HEALTHCHECK")[-1]
        return list(json.loads(text[text.index("CMD") + 3 :].strip()))


def read_dockerfile(path: Path = ROOT / "Dockerfile") -> Dockerfile:
    """Split a Dockerfile into instructions (joining `\\` continuations, dropping comments)."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"

    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in lines:
        keyword, _, text = line.partition(" ")
        keyword, text = keyword.upper(), " ".join(text.split())
        if keyword == "FROM":
            words = text.split()
            assert len(words) == 3 and words[1].upper() == "AS", f"unnamed stage: {line}"
            current = stages[words[2]] = Stage(words[2], words[0])
        elif current is None:
            assert keyword == "ARG", f"only ARG may come before the first FROM: {line}"
            name, _, default = text.partition("=")
            args[name] = default.strip('"')
        else:
            current.instructions.append((keyword, text))
    return Dockerfile(args, stages)


def read_compose(path: Path = ROOT / "docker-compose.yml") -> dict[str, Any]:
    """The compose file as YAML (anchors and `<<` merges resolved by the YAML loader)."""
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def variables(text: str) -> set[str]:
    """The names of every `${VAR}` / `$VAR` in `text` (not `$$`, an escaped dollar)."""
    return {m.group(1) or m.group(4) for m in _VARIABLE.finditer(text.replace("$$", ""))}


def with_defaults(text: str) -> str:
    """`text` as compose would see it with none of its variables set: `${X:-d}` is `d`, a
    required `${X:?…}` a placeholder."""

    def value(match: re.Match[str]) -> str:
        if match.group(2) in (":-", "-"):
            return match.group(3)
        return "placeholder"

    return _VARIABLE.sub(value, text)


def strings(node: Any) -> list[str]:
    """Every string inside a YAML tree."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*strings(k), *strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return []
