"""Dependencies point inward: storage/ imports nothing from the layers above it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import storyloom.storage


def test_storage_imports_no_jobs_bot_or_generation_code() -> None:
    modules = [
        f"storyloom.storage.{m.name}"
        for m in pkgutil.iter_modules(storyloom.storage.__path__)
        if m.name != "migrations"
    ]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "above = ('storyloom.jobs', 'storyloom.bot', 'storyloom.generation')\n"
        "print(sorted(m for m in sys.modules if m.startswith(above)))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert len(modules) > 5
    assert found.stdout.strip() == "[]"
