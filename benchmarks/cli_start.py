"""How long `storyloom --help` takes to start (the issue's target: under 1 s).

Runs the installed console script several times in fresh processes and reports the
median and the slowest, wall clock, on this machine as loaded as it is.

    python benchmarks/cli_start.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 1.0


def time_help(runs: int) -> list[float]:
    """Seconds of each `storyloom --help` run."""
    script = shutil.which("storyloom") or str(Path(sys.executable).parent / "storyloom")
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([script, "--help"], check=True, capture_output=True, timeout=120)
        took.append(time.perf_counter() - started)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    took = time_help(args.runs)
    median, slowest = statistics.median(took), max(took)
    print(f"{'command':<20} {'runs':>5} {'median s':>9} {'slowest s':>10} {'target s':>9}")
    print(f"{'storyloom --help':<20} {args.runs:>5} {median:>9.3f} {slowest:>10.3f} {TARGET_S:>9}")
    if args.json:
        result = {"runs": took, "median_s": median, "slowest_s": slowest, "target_s": TARGET_S}
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
