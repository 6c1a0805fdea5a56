"""Shared fixtures for generation tests: the tiny offline models, built once per session."""

from __future__ import annotations

import os

# No model hub is reachable from the test machines; without this, hub lookups retry
# over the network for a long time before failing. Set before diffusers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import pytest
import torch

from storyloom.generation.models import build_tiny_model

# The tiny models gain nothing from intra-op threads, and on a busy CPU OpenMP's
# spin-waiting makes each pipeline call 10-40x slower (measured: 0.2 s vs 3-8 s).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache folder for the whole session."""
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tiny_model_cache: Path) -> Path:
    """The tiny SDXL-shaped model as a diffusers folder."""
    return build_tiny_model("tiny-sdxl", tiny_model_cache)


@pytest.fixture(scope="session")
def tiny_sd15_dir(tiny_model_cache: Path) -> Path:
    """The tiny SD1.5-shaped model as a diffusers folder."""
    return build_tiny_model("tiny-sd15", tiny_model_cache)
