from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("discord", "slack_bolt", "slack_sdk", "sqlalchemy", "torch", "storyloom.generation")

_SCRIPT = """
import importlib, pkgutil, sys
import storyloom.story as core
for module in pkgutil.iter_modules(core.__path__):
    importlib.import_module(f"{core.__name__}.{module.name}")
print(sorted(n for n in sys.modules if n.startswith(FORBIDDEN)))
"""


def test_the_core_imports_no_framework() -> None:
    # A fresh interpreter: this test process may already have the frameworks loaded.
    code = f"FORBIDDEN = {FORBIDDEN!r}\n{_SCRIPT}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
