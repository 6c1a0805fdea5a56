"""`storyloom eval` through the real command line, on the tiny models and encoders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

STORY = """
title = "Two friends"
seed = 3
identity_mode = "csa+reference"

[[characters]]
name = "Mira"
description = "a girl with red hair"
reference = "mira.png"

[[characters]]
name = "Tom"
description = "an old man"

[[panels]]
scene = "[Mira] waves"

[[panels]]
scene = "[Mira] and [Tom] talk"

[[panels]]
scene = "a stormy sea"
"""


def test_eval_renders_the_story_and_reports_scores_as_a_table_and_json(tmp_path: Path) -> None:
    Image.new("RGB", (40, 56), "orange").save(tmp_path / "mira.png")
    (tmp_path / "story.toml").write_text(STORY)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "STORYLOOM_MODEL_CACHE_DIR": str(tmp_path / "models"),
        "STORYLOOM_STORE_DIR": str(tmp_path / "stores"),
        "STORYLOOM_ADAPTER_MODEL": "tiny-ip-adapter",
        "STORYLOOM_EVAL_CLIP_MODEL": "tiny-clip",
        "STORYLOOM_EVAL_DINO_MODEL": "tiny-dino",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "storyloom.cli",
            "eval",
            "story.toml",
            "--model",
            "tiny-sd15",
            "--steps",
            "2",
            "--size",
            "64",
            "--json",
            "scores/eval.json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "scores" / "eval.json").read_text())
    assert result["model"] == "tiny-sd15" and result["identity_mode"] == "csa+reference"
    # the story file's mode reached the renderer: both sheets were kept as references
    assert len(list((tmp_path / "stores").glob("*.sheet.png"))) == 2
    assert set(result["characters"]) == {"Mira", "Tom"}
    assert result["characters"]["Mira"]["panels"] == 2
    assert result["characters"]["Tom"]["clip_i_panels"] is None  # one panel: no pairs
    assert set(result["clip_t"]) == {"1", "2", "3"}
    for row in result["characters"].values():
        assert -1.0 <= row["clip_i_sheet"] <= 1.0 and -1.0 <= row["dino_sheet"] <= 1.0
    lines = done.stdout.splitlines()
    assert lines[1].split()[:3] == ["character", "panels", "clip_i_sheet"]
    assert any(line.startswith("Mira ") for line in lines)
    assert "CLIP-T (prompt alignment, mean of 3 panels)" in done.stdout
