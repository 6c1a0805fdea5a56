"""What the safety checks cost on this CPU.

    python benchmarks/safety.py --json storyloom-out/bench/safety.json

safety_ms_per_panel: the image check (NudeNet's 320n ONNX detector on onnxruntime, CPU) on
one 1024×1024 panel, as the worker runs it beside the renderer: median of --panels
different panels after one warm-up (the model is loaded once per process; its load time is
reported apart). Target <= 150 ms.
text_check_us_per_beat: the word list (default terms plus 20 a server added) on one beat of
typical length, mixed plain and disguised, median per beat over --beats beats. Target
<= 200 µs.

Panels are the procedural stand-ins of benchmarks/pages.py (smooth shapes, mild grain).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from pages import panel

from storyloom.generation.safety import NudeNetDetector
from storyloom.story.moderation import default_words

TARGET_SAFETY_MS = 150.0
TARGET_TEXT_US = 200.0
BEATS = [
    '[Mira] finds a brass key in the sand # Mira: "What is this?"',
    "[Old Tom] rows out to the lighthouse as the sun goes down over the bay.",
    'Old Tom: "Careful with that key." # Mira: "I am always careful!"',
    "The lamp turns on by itself, and the gulls go quiet all at once.",
    "They climb the spiral stairs, one hundred and 12 steps, counting every one.",
    "[Mira] whispers: f.u.c.k, the d00r is l0cked # a stretched 'nooo'",
    "Ｆｕｌｌｗｉｄｔｈ letters, accénts and zero\u200bwidth joins in a caption",
]
SERVER_TERMS = [f"term{n}word" for n in range(20)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--panels", type=int, default=12)
    parser.add_argument("--beats", type=int, default=20000)
    args = parser.parse_args()

    started = time.perf_counter()
    detector = NudeNetDetector()
    load_s = time.perf_counter() - started
    panels = [panel(seed, 1024) for seed in range(args.panels)]
    detector(panels[0])  # warm-up: onnxruntime plans its first run
    times = []
    for image in panels:
        start = time.perf_counter()
        detector(image)
        times.append((time.perf_counter() - start) * 1000)
    safety_ms = statistics.median(times)

    words = default_words().plus(SERVER_TERMS)
    beats = [BEATS[i % len(BEATS)] for i in range(args.beats)]
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for beat in beats:
            words.match(beat)
        rounds.append((time.perf_counter() - start) / len(beats) * 1e6)
    text_us = statistics.median(rounds)

    rows = [
        ("safety_ms_per_panel", safety_ms, TARGET_SAFETY_MS, safety_ms <= TARGET_SAFETY_MS),
        ("text_check_us_per_beat", text_us, TARGET_TEXT_US, text_us <= TARGET_TEXT_US),
    ]
    print(f"{'metric':<24}{'value':>10}{'target':>10}  ok")
    for name, value, target, ok in rows:
        print(f"{name:<24}{value:>10.1f}{target:>10.1f}  {'yes' if ok else 'NO'}")
    print(
        f"detector load {load_s:.2f} s; per panel min {min(times):.1f} ms, "
        f"max {max(times):.1f} ms over {len(times)} panels"
    )
    load = os.getloadavg()
    print(f"cpu: {os.cpu_count()} cores, load average {load[0]:.2f} (shared machines skew timings)")

    report = {
        "safety_ms_per_panel": safety_ms,
        "safety_ms_min": min(times),
        "safety_ms_max": max(times),
        "detector_load_seconds": load_s,
        "text_check_us_per_beat": text_us,
        "targets": {
            "safety_ms_per_panel": TARGET_SAFETY_MS,
            "text_check_us_per_beat": TARGET_TEXT_US,
        },
        "ok": all(ok for *_, ok in rows),
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average_1m": load[0],
            "platform": platform.platform(),
        },
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
