"""What every benchmark reports beside its own figures: the machine, a table, the JSON file.

The scripts in this folder import it as `report` (run as `python benchmarks/NAME.py`, the
folder is first on sys.path). Timings on a shared machine are only comparable within one
run, so the machine and its load go into every JSON file.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path


def machine() -> dict[str, object]:
    """The machine a run measured: Python, CPUs, their load, the platform."""
    return {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
    }


def load_line() -> str:
    """One line on how busy the machine was: shared machines skew timings."""
    load = os.getloadavg()[0]
    return f"cpu: {os.cpu_count()} cores, load average {load:.2f} (shared machines skew timings)"


def print_table(
    header: Sequence[str], rows: Iterable[Sequence[object]], name_width: int, value_width: int
) -> None:
    """Rows of (name, value, target…): names left-aligned, values right-aligned, the rest
    as they are."""
    for row in [header, *rows]:
        name, value, *rest = row
        print(f"{name!s:<{name_width}} {value!s:>{value_width}}  " + " ".join(map(str, rest)))


def write_json(path: Path | None, figures: Mapping[str, object]) -> None:
    """Write `figures` as indented JSON to `path` (its folder made), if a path was given."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, default=list) + "\n")
