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
Both are measured in wall time (the targets) and in this process's CPU time: on a shared
machine the wall time also counts the time other processes held the cores, the CPU time
does not (onnxruntime may use more than one thread, so its CPU time can exceed the wall).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from pages import panel
from report import load_line, machine, write_json

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
    times, cpu = [], []
    for image in panels:
        start, start_cpu = time.perf_counter(), time.process_time()
        detector(image)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    safety_ms = statistics.median(times)
    safety_cpu_ms = statistics.median(cpu)

    words = default_words().plus(SERVER_TERMS)
    beats = [BEATS[i % len(BEATS)] for i in range(args.beats)]
    rounds, cpu_rounds = [], []
    for _ in range(5):
        start, start_cpu = time.perf_counter(), time.process_time()
        for beat in beats:
            words.match(beat)
        rounds.append((time.perf_counter() - start) / len(beats) * 1e6)
        cpu_rounds.append((time.process_time() - start_cpu) / len(beats) * 1e6)
    text_us = statistics.median(rounds)
    text_cpu_us = statistics.median(cpu_rounds)

    rows = [
        ("safety_ms_per_panel", safety_ms, safety_cpu_ms, TARGET_SAFETY_MS),
        ("text_check_us_per_beat", text_us, text_cpu_us, TARGET_TEXT_US),
    ]
    print(f"{'metric':<24}{'wall':>10}{'cpu':>10}{'target':>10}  ok (wall)")
    for name, value, cpu_value, target in rows:
        ok = "yes" if value <= target else "NO"
        print(f"{name:<24}{value:>10.1f}{cpu_value:>10.1f}{target:>10.1f}  {ok}")
    print(
        f"detector load {load_s:.2f} s; per panel min {min(times):.1f} ms, "
        f"max {max(times):.1f} ms over {len(times)} panels"
    )
    print(load_line())

    report = {
        "safety_ms_per_panel": safety_ms,
        "safety_cpu_ms_per_panel": safety_cpu_ms,
        "text_check_cpu_us_per_beat": text_cpu_us,
        "safety_ms_min": min(times),
        "safety_ms_max": max(times),
        "detector_load_seconds": load_s,
        "text_check_us_per_beat": text_us,
        "targets": {
            "safety_ms_per_panel": TARGET_SAFETY_MS,
            "text_check_us_per_beat": TARGET_TEXT_US,
        },
        "ok": all(value <= target for _, value, _, target in rows),
        "machine": machine(),
    }
    write_json(args.json, report)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
