"""What identity data a read pass keeps resident: one layer of the stored tokens at a time,
whether they come from a store or are recomputed (spooled to a file a step at a time), and
nothing at all during the VAE decode (a page's peak memory)."""

from __future__ import annotations

import contextlib
import gc
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from storyloom.generation.consistent_attention import CSAState
from storyloom.generation.models import LoadedModel, load_pipeline
from storyloom.generation.renderer import CharacterSpec, PanelSpec, RenderSettings, StoryRenderer

SMALL = RenderSettings(width=64, height=64, steps=3, guidance=5.0, max_batch=4)
CAST = {
    n: CharacterSpec(n, f"{n} in a green coat", seed=40 + i)
    for i, n in enumerate(["Mira", "Tom", "Ada"])
}
PAGE = [
    PanelSpec(1, "[Mira] and [Tom] at the pier", ("Mira", "Tom")),
    PanelSpec(2, "[Ada] waves", ("Ada",)),
]


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))


def float8_tensors() -> int:
    """Live tensors of the stores' dtype (float8 under the defaults) in this process."""
    return sum(1 for o in gc.get_objects() if torch.is_tensor(o) and o.dtype == torch.float8_e4m3fn)


def held_at_decode(renderer: StoryRenderer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Render the page; float8 tensors alive when each VAE decode starts, above those
    alive before the render."""
    vae = renderer.pipe.vae
    real_decode = vae.decode
    before = float8_tensors()
    seen: list[int] = []

    def decode(*args: Any, **kwargs: Any) -> Any:
        seen.append(float8_tensors() - before)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(vae, "decode", decode)
    renderer.render_panels(PAGE, CAST, style="comic", seed=5)
    monkeypatch.undo()
    return seen


def test_a_streamed_read_brings_in_one_layer_at_a_time_and_holds_nothing_at_the_decode(
    sdxl: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    StoryRenderer(sdxl, SMALL, tmp_path).render_panels(PAGE, CAST, style="comic", seed=5)
    probe = StoryRenderer(sdxl, SMALL, tmp_path)
    _, step = probe.store_sizes(probe.identity_spec(CAST["Mira"], "comic"))
    streaming = StoryRenderer(sdxl, SMALL, tmp_path, identity_ram_bytes=3 * step)
    states: list[CSAState] = []
    real_state = streaming.read_state

    def keep(*args: Any) -> CSAState:
        states.append(real_state(*args))
        return states[-1]

    monkeypatch.setattr(streaming, "read_state", keep)
    assert held_at_decode(streaming, monkeypatch) == [0]
    assert streaming.last_policy == "stream"
    # the most a layer brings in is that layer of the three stores: well under one step
    store = probe.store_for(CAST["Mira"], "comic")
    largest_layer = max(t.nbytes for t in store.tokens[0])
    assert 0 < states[0].device_bytes_peak <= 3 * largest_layer < 3 * step


def test_recompute_spools_each_step_beside_the_stores_and_holds_nothing_at_the_decode(
    sdxl: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recomputing = StoryRenderer(sdxl, SMALL, tmp_path, identity_ram_bytes=1)
    order: list[tuple[str, int]] = []
    # float8 tensors alive, and spool files open, once a read step has taken its tokens
    resident: list[int] = []
    spools: list[list[str]] = []
    states: list[CSAState] = []
    real_begin = CSAState.begin_step
    before = float8_tensors()

    def begin_step(self: CSAState, *args: Any) -> None:
        order.append((self.mode, self.step + 1))  # a read step begins by taking its tokens
        real_begin(self, *args)
        if self.mode == "read":
            states.append(self)
            resident.append(float8_tensors() - before)
            spools.append([p for p in open_files() if ".relay-" in p])

    monkeypatch.setattr(CSAState, "begin_step", begin_step)
    assert held_at_decode(recomputing, monkeypatch) == [0]
    assert recomputing.last_policy == "recompute"
    # each character's step waits in its own unlinked file in the store folder, not in memory
    assert resident and set(resident) == {0}, resident
    assert all(len(open_) == len(CAST) for open_ in spools), spools
    assert all(p.startswith(f"{tmp_path}/.relay-") and p.endswith(" (deleted)")
               for open_ in spools for p in open_)  # fmt: skip
    assert not [p for p in open_files() if ".relay-" in p]  # closed after the page
    # the read pass brings in one layer of the characters at a time, as from a store
    probe = StoryRenderer(sdxl, SMALL, tmp_path / "stores")
    store = probe.store_for(CAST["Mira"], "comic")
    largest_layer = max(t.nbytes for t in store.tokens[0])
    _, step = probe.store_sizes(probe.identity_spec(CAST["Mira"], "comic"))
    assert 0 < max(s.device_bytes_peak for s in states) <= 3 * largest_layer < 3 * step
    # a write pass makes step s only once the read pass is at step s: it never runs ahead
    # while the read pass still reads its step s - 1 (written over by step s)
    read_step = -1
    for mode, step_ in order:
        if mode == "read":
            read_step = step_
        else:
            assert step_ <= max(read_step, 0), order
    assert sum(mode == "write" for mode, _ in order) == len(CAST) * SMALL.steps


def open_files() -> list[str]:
    """What this process's descriptors point at."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
    return found
