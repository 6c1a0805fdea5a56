"""The README's `storyloom …` command blocks run exactly as written (comments and all),
in a shell, against the example story: a pasted command works. (The console session and
its comments: tests/console/test_console.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def fenced(text: str) -> list[tuple[str, str]]:
    """(info string, body) of every fenced block in a Markdown text."""
    blocks: list[tuple[str, str]] = []
    fence: str | None = None
    body: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            if fence is None:
                fence, body = line[3:].strip(), []
            else:
                blocks.append((fence, "".join(body)))
                fence = None
        elif fence is not None:
            body.append(line)
    return blocks


def storyloom_blocks() -> list[str]:
    """The README's shell blocks that run storyloom itself (no make, docker or services)."""
    readme = (ROOT / "README.md").read_text()
    return [
        body
        for info, body in fenced(readme)
        if info == "sh" and body.lstrip().startswith("storyloom ")
    ]


def test_the_readme_has_the_render_clip_and_console_commands() -> None:
    joined = "".join(storyloom_blocks())
    for command in ("storyloom render ", "storyloom clip ", "storyloom console "):
        assert command in joined


@pytest.mark.parametrize("block", storyloom_blocks(), ids=lambda b: b.split()[1])
def test_a_readme_command_block_runs_as_written(block: str, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the README's relative paths
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        # the command as written; only how big and how long is the test's (tiny, fast)
        "STORYLOOM_STEPS": "2",
        "STORYLOOM_WIDTH": "64",
        "STORYLOOM_HEIGHT": "64",
        "STORYLOOM_MODEL_CACHE_DIR": str(tmp_path / "models"),
        "STORYLOOM_STORE_DIR": str(tmp_path / "stores"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    if "--out out/" in block:  # it made what it says
        assert any((tmp_path / "out").rglob("*.*"))
