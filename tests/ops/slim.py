"""Run Python as in the slim bot image: the render extra's packages cannot be imported.

A meta-path finder refuses them, so an import of torch anywhere fails as it would there,
and the traceback names the chain of storyloom modules that led to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RENDER_ONLY = (
    "torch", "diffusers", "transformers", "accelerate", "safetensors", "moviepy",
    "imageio_ffmpeg", "huggingface_hub",
    # the `safety` extra: the image check runs on the worker, beside the renderer
    "nudenet", "onnxruntime", "cv2",
)  # fmt: skip

BLOCKER = f"""
import importlib.abc, sys
class NotInTheSlimImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {RENDER_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (slim image)", name=name)
        return None
sys.meta_path.insert(0, NotInTheSlimImage())
"""

IMPORTS = """
import importlib, json, traceback
found = {}
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
        found[module] = None
    except ImportError as error:
        frames = traceback.extract_tb(error.__traceback__)
        chain = [f.filename.split("storyloom/")[-1] for f in frames if "/storyloom/" in f.filename]
        found[module] = f"{error} via " + " <- ".join(reversed(chain))
print(json.dumps(found))
"""


def import_without_render_packages(modules: list[str]) -> dict[str, str | None]:
    """module → None if it imports in the slim image, else what failed and through which
    storyloom modules."""
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER + IMPORTS, *modules],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, str | None] = json.loads(done.stdout.splitlines()[-1])
    return found


def run_cli_without_render_packages(
    args: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`storyloom ARGS` as the slim image would run it."""
    script = BLOCKER + "from storyloom.cli import main\nsys.argv[0] = 'storyloom'\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )
