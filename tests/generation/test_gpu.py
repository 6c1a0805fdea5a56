"""GPU-only checks: skipped without CUDA (CI has none); run them on a GPU machine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from storyloom.generation.consistent_attention import CSAState
from storyloom.generation.models import load_pipeline
from storyloom.generation.renderer import CharacterSpec, PanelSpec, RenderSettings, StoryRenderer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

SETTINGS = RenderSettings(width=128, height=128, steps=10, guidance=5.0)
MIRA = CharacterSpec("Mira", "a girl with red hair", seed=1)


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> StoryRenderer:
    loaded = load_pipeline(
        "tiny-sdxl", device="cuda", dtype=torch.float16, cache_dir=tmp_path_factory.mktemp("m")
    )
    return StoryRenderer(loaded, SETTINGS, tmp_path_factory.mktemp("stores"))


def test_the_store_stays_in_pinned_host_memory_and_one_step_goes_to_the_gpu(
    renderer: StoryRenderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = renderer.lock_character(MIRA, "comic").store
    assert all(t.device.type == "cpu" and t.is_pinned() for ls in store.tokens.values() for t in ls)
    peaks: list[int] = []
    original = CSAState.begin_step

    def spy(self: CSAState, *args: object) -> None:
        original(self, *args)  # type: ignore[arg-type]
        peaks.append(self.device_bytes_peak)

    monkeypatch.setattr(CSAState, "begin_step", spy)
    renderer.render_panels(
        [PanelSpec(1, "[Mira] waves", ("Mira",))], {"Mira": MIRA}, style="comic", seed=1
    )
    per_step = store.nbytes // SETTINGS.steps
    assert max(peaks) <= per_step


def test_fp16_gpu_panels_are_deterministic_and_restore_processors(renderer: StoryRenderer) -> None:
    before = dict(renderer.pipe.unet.attn_processors)
    panels = [PanelSpec(i, "[Mira] walks", ("Mira",)) for i in range(1, 4)]
    a = renderer.render_panels(panels, {"Mira": MIRA}, style="comic", seed=2)
    b = renderer.render_panels(panels, {"Mira": MIRA}, style="comic", seed=2)
    assert all(x.image.tobytes() == y.image.tobytes() for x, y in zip(a, b, strict=True))
    assert dict(renderer.pipe.unet.attn_processors) == before


def test_a_cuda_store_loads_in_a_cpu_renderer(renderer: StoryRenderer, tmp_path: Path) -> None:
    store = renderer.lock_character(dataclasses.replace(MIRA, seed=5), "comic").store
    assert renderer.store_dir is not None
    path = store.save(tmp_path)
    from storyloom.generation.identity_store import IdentityStore

    loaded = IdentityStore.load(path)
    assert loaded.nbytes == store.nbytes and loaded.timesteps == store.timesteps
