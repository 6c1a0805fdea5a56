"""GPU memory as Prometheus gauges, read when scraped.

Only a process that already uses torch and sees CUDA reports anything: the collector never
imports torch itself, so the slim bot image (no torch) serves the same metrics without it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class GpuMemoryCollector(Collector):
    """Allocated, reserved, free and total bytes of each CUDA device this process sees."""

    def collect(self) -> Iterator[Metric]:
        """One sample per device and kind; nothing without torch or CUDA."""
        torch = sys.modules.get("torch")
        # not before this process has used CUDA: asking would create a context (memory)
        if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return
        families = {
            kind: GaugeMetricFamily(
                f"storyloom_gpu_memory_{kind}_bytes", text, labels=["device", "name"]
            )
            for kind, text in (
                ("allocated", "GPU memory held by this process's tensors."),
                ("reserved", "GPU memory held by this process's caching allocator."),
                ("free", "GPU memory free on the device (all processes)."),
                ("total", "GPU memory of the device."),
            )
        }
        for index in _used_devices(torch):
            labels = [f"cuda:{index}", torch.cuda.get_device_name(index)]
            free, total = torch.cuda.mem_get_info(index)
            values = {
                "allocated": torch.cuda.memory_allocated(index),
                "reserved": torch.cuda.memory_reserved(index),
                "free": free,
                "total": total,
            }
            for kind, value in values.items():
                families[kind].add_metric(labels, float(value))
        yield from families.values()


def _used_devices(torch: object) -> list[int]:
    """The current device and every device this process holds memory on (only these: a
    query on another device would open a CUDA context there)."""
    cuda = torch.cuda  # type: ignore[attr-defined]
    current = cuda.current_device()
    return [i for i in range(cuda.device_count()) if i == current or cuda.memory_reserved(i) > 0]
