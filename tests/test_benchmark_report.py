"""benchmarks/report.py: the machine, the table and the JSON every benchmark writes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("report", module)
    spec.loader.exec_module(module)
    return module


def test_the_json_carries_the_figures_and_the_machine(report: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "bench" / "x.json"  # the folder does not exist yet
    report.write_json(out, {"ms": 1.5, "machine": report.machine(), "ids": {3}})
    data = json.loads(out.read_text())
    assert data["ms"] == 1.5 and data["ids"] == [3]
    assert set(data["machine"]) == {"python", "cpu_count", "load_average_1m", "platform"}
    assert data["machine"]["cpu_count"] >= 1


def test_no_path_writes_nothing(report: ModuleType, tmp_path: Path) -> None:
    report.write_json(None, {"ms": 1})
    assert list(tmp_path.iterdir()) == []


def test_the_table_aligns_names_left_and_values_right(
    report: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    report.print_table(("metric", "value", "target"), [("p99 ms", 12.5, "<= 50")], 8, 6)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["metric    value  target", "p99 ms     12.5  <= 50"]
