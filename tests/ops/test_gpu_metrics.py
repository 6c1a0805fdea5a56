"""GPU memory on /metrics: present in a process that uses CUDA, absent elsewhere."""

from __future__ import annotations

import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families

from storyloom.ops.metrics import Metrics


def gpu_samples(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels["device"]): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
        if s.name.startswith("storyloom_gpu_memory_")
    }


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_without_cuda_no_gpu_memory_is_reported() -> None:
    metrics = Metrics("worker")
    assert "storyloom_jobs" in metrics.exposition().decode()  # the rest is there
    assert gpu_samples(metrics) == {}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_memory_counts_this_process_tensors() -> None:
    metrics = Metrics("worker")
    before = gpu_samples(metrics).get(("storyloom_gpu_memory_allocated_bytes", "cuda:0"), 0.0)
    block = torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda:0")  # 64 MiB
    found = gpu_samples(metrics)
    assert found["storyloom_gpu_memory_allocated_bytes", "cuda:0"] >= before + block.numel()
    assert found["storyloom_gpu_memory_reserved_bytes", "cuda:0"] >= block.numel()
    total = found["storyloom_gpu_memory_total_bytes", "cuda:0"]
    assert 0 < found["storyloom_gpu_memory_free_bytes", "cuda:0"] < total
    del block
