"""The identity data of a render fits its budgets: whole stores, streamed from disk,
evicted and rebuilt, or recomputed beside the panels, and the page is the same bytes."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from storyloom.generation.consistent_attention import RoutedProcessor
from storyloom.generation.identity_store import IdentityStore
from storyloom.generation.models import LoadedModel, load_pipeline
from storyloom.generation.recompute import StepSpool, WritePass
from storyloom.generation.renderer import CharacterSpec, PanelSpec, RenderSettings, StoryRenderer
from storyloom.generation.store_files import StreamedStore

SMALL = RenderSettings(width=64, height=64, steps=3, guidance=5.0, max_batch=4)
MIRA = CharacterSpec("Mira", "a girl with short red hair", seed=11)
TOM = CharacterSpec("Tom", "an old man with a white beard", seed=12)
CAST = {"Mira": MIRA, "Tom": TOM}
PAGE = [
    PanelSpec(1, "[Mira] runs to the harbour", ("Mira",)),
    PanelSpec(2, "[Mira] and [Tom] talk", ("Mira", "Tom")),
    PanelSpec(3, "an empty street at night"),
    PanelSpec(4, "[Tom] sleeps", ("Tom",)),
]


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))


def page_bytes(renderer: StoryRenderer) -> list[bytes]:
    panels = renderer.render_panels(PAGE, CAST, style="comic", seed=5)
    return [np.asarray(p.image).tobytes() for p in panels]


def stores_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.safetensors"))


def test_a_page_is_byte_identical_whichever_policy_served_its_identities(
    sdxl: LoadedModel, tmp_path: Path
) -> None:
    # under the defaults: float8 tokens (the recompute policy rounds its tokens through
    # float8 as a saved store does) and the reference schedule (read and write draw alike)
    assert (SMALL.store_dtype, SMALL.csa_schedule) == ("float8", "reference")
    whole_ram = StoryRenderer(sdxl, SMALL, tmp_path / "a")
    expected = page_bytes(whole_ram)
    assert whole_ram.last_policy == "store"
    whole, step = whole_ram.store_sizes(whole_ram.identity_spec(MIRA, "comic"))
    assert whole == step * SMALL.steps

    # RAM for one step of both characters, not a whole store: streamed from disk
    streamed = StoryRenderer(sdxl, SMALL, tmp_path / "a", identity_ram_bytes=2 * step)
    assert page_bytes(streamed) == expected
    assert streamed.last_policy == "stream"

    # disk for one store and a half: the second store evicts the first (least recently
    # used), which is rebuilt from its spec for the next render
    folder = tmp_path / "small-disk"
    evicting = StoryRenderer(
        sdxl, SMALL, folder, identity_ram_bytes=2 * step, store_disk_bytes=whole * 3 // 2
    )
    assert page_bytes(evicting) == expected
    assert evicting.shelf is not None and evicting.shelf.evicted == 1
    assert len(stores_in(folder)) == 1
    assert page_bytes(evicting) == expected
    assert evicting.shelf.evicted >= 2 and len(stores_in(folder)) == 1

    # RAM for less than one step of both: recomputed beside each batch, nothing stored
    folder = tmp_path / "recompute"
    recomputing = StoryRenderer(sdxl, SMALL, folder, identity_ram_bytes=2 * step - 1)
    assert page_bytes(recomputing) == expected
    assert recomputing.last_policy == "recompute"
    assert stores_in(folder) == []


def started_passes(monkeypatch: pytest.MonkeyPatch) -> list[WritePass]:
    """The recompute write passes started from now on, in order."""
    started: list[WritePass] = []
    real_start = WritePass.start

    def start(self: WritePass, *args: Any) -> None:
        started.append(self)
        real_start(self, *args)

    monkeypatch.setattr(WritePass, "start", start)
    return started


def test_a_failed_or_cancelled_recompute_stops_its_identity_passes(
    sdxl: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = started_passes(monkeypatch)
    renderer = StoryRenderer(sdxl, SMALL, tmp_path, identity_ram_bytes=1)
    with pytest.raises(Exception, match="cancelled"):
        renderer.render_panels(PAGE, CAST, style="comic", seed=5, should_cancel=lambda: True)
    assert renderer.last_policy == "recompute"
    # every write pass was stopped where it paused, not left suspended in its greenlet
    assert len(started) == 2 and all(w.finished for w in started)
    processors = renderer.pipe.unet.attn_processors.values()
    assert not [p for p in processors if isinstance(p, RoutedProcessor)]

    # a write pass that fails at its second step (its spool's disk is full): the render
    # fails naming the character, and the other pass is stopped too
    started.clear()
    spools: list[StepSpool] = []  # one per write pass, in the passes' order (Mira, Tom)
    real_init, real_write = StepSpool.__init__, StepSpool.write

    def init(self: StepSpool, *args: Any) -> None:
        spools.append(self)
        real_init(self, *args)

    def write(self: StepSpool, step: int, layer: int, tokens: torch.Tensor) -> object:
        if step == 1 and self is spools[1]:
            raise OSError(28, "No space left on device")
        return real_write(self, step, layer, tokens)

    monkeypatch.setattr(StepSpool, "__init__", init)
    monkeypatch.setattr(StepSpool, "write", write)
    with pytest.raises(RuntimeError, match="identity pass of Tom failed") as failed:
        renderer.render_panels(PAGE, CAST, style="comic", seed=5)
    assert isinstance(failed.value.__cause__, OSError)
    assert len(started) == 2 and all(w.finished for w in started)
    processors = renderer.pipe.unet.attn_processors.values()
    assert not [p for p in processors if isinstance(p, RoutedProcessor)]


def test_recompute_stops_its_identity_passes_before_the_decode(
    sdxl: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a write pass paused after its last step holds its latents, prompt embeddings and
    # last step: 4.3 MiB of 8 passes' live data at the decode, a page's peak memory
    # (benchmarks/memory.py)
    started = started_passes(monkeypatch)
    vae: Any = sdxl.pipeline.vae  # type: ignore[attr-defined]
    real_decode = vae.decode
    at_decode: list[list[bool]] = []

    def decode(*args: Any, **kwargs: Any) -> Any:
        at_decode.append([w.finished for w in started])
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(vae, "decode", decode)
    renderer = StoryRenderer(sdxl, SMALL, tmp_path, identity_ram_bytes=1)
    renderer.render_panels(PAGE, CAST, style="comic", seed=5)
    assert renderer.last_policy == "recompute"
    assert at_decode == [[True, True]]


def test_a_lock_pass_over_the_ram_budget_spools_its_store_to_disk_bit_for_bit(
    sdxl: LoadedModel, tmp_path: Path
) -> None:
    in_ram = StoryRenderer(sdxl, SMALL, tmp_path / "ram").lock_character(MIRA, "comic").store
    spooling = StoryRenderer(sdxl, SMALL, tmp_path / "spool", identity_ram_bytes=1)
    sheet = spooling.lock_character(MIRA, "comic")
    assert isinstance(sheet.store, StreamedStore) and sheet.store.tokens == {}
    assert not list((tmp_path / "spool").glob(".*"))  # no spool or temp file left behind
    # the spooled file is a safetensors file like any saved store, with the same bits
    loaded = IdentityStore.load(tmp_path / "spool" / f"{in_ram.key}.safetensors")
    assert loaded.timesteps == in_ram.timesteps
    for step, layers in in_ram.tokens.items():
        assert all(torch.equal(a, b) for a, b in zip(layers, loaded.tokens[step], strict=True))


def test_recompute_with_prompts_longer_than_the_text_encoder_gives_the_same_panels(
    sdxl: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # found by the memory benchmark: tokenizers truncate through shared state, so write
    # passes encoding at the same time as each other got 104 tokens for a 77-token encoder
    names = ["Mira", "Tom", "Ada"]
    coat = " wears a long coat with brass buttons and"
    wordy = {n: CharacterSpec(n, (n + coat) * 8, seed=20 + i) for i, n in enumerate(names)}
    page = [PanelSpec(1, "[Mira], [Tom] and [Ada] at the pier", ("Mira", "Tom", "Ada"))]
    stored = StoryRenderer(sdxl, SMALL, tmp_path / "a").render_panels(
        page, wordy, style="comic", seed=3
    )
    # no two prompt encodings may overlap (each is slowed down to make an overlap show)
    tokenizer_type = type(sdxl.pipeline.tokenizer)  # type: ignore[attr-defined]
    real_call = tokenizer_type.__call__
    inside, most = 0, 0
    count = threading.Lock()

    def one_at_a_time(self: object, *args: object, **kwargs: object) -> object:
        nonlocal inside, most
        with count:
            inside += 1
            most = max(most, inside)
        time.sleep(0.05)
        try:
            return real_call(self, *args, **kwargs)
        finally:
            with count:
                inside -= 1

    monkeypatch.setattr(tokenizer_type, "__call__", one_at_a_time)
    recomputing = StoryRenderer(sdxl, SMALL, tmp_path / "b", identity_ram_bytes=1)
    recomputed = recomputing.render_panels(page, wordy, style="comic", seed=3)
    assert recomputing.last_policy == "recompute"
    assert most == 1
    assert np.array_equal(np.asarray(stored[0].image), np.asarray(recomputed[0].image))


def test_recompute_runs_all_of_its_identity_passes_on_the_read_pass_thread(
    sdxl: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # found by the memory benchmark: UNet calls made on 8 write pass threads kept 8 calls'
    # activations in 8 glibc arenas (293 MiB of peak RSS above a plain page against a
    # 21 MiB budget), even taking turns; with only the UNet calls on the read pass's
    # thread, the prompt encodings and scheduler steps still left 6 to 8 MiB in the
    # threads' arenas (11 to 18 MiB above a plain page against 10.5). On one thread the
    # passes reuse the same memory.
    names = ["Mira", "Tom", "Ada"]
    cast = {
        n: CharacterSpec(n, f"{n} in a yellow raincoat", seed=30 + i) for i, n in enumerate(names)
    }
    page = [PanelSpec(1, "[Mira], [Tom] and [Ada] at the pier", ("Mira", "Tom", "Ada"))]
    stored = StoryRenderer(sdxl, SMALL, tmp_path / "a").render_panels(
        page, cast, style="comic", seed=3
    )
    pipe: Any = sdxl.pipeline
    calls: dict[str, list[int]] = {"unet": [], "text": [], "scheduler": []}

    def on_thread(kind: str, cls: type, name: str) -> None:
        real = getattr(cls, name)

        def counted(self: object, *args: object, **kwargs: object) -> object:
            calls[kind].append(threading.get_ident())
            return real(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, counted)

    on_thread("unet", type(pipe.unet), "forward")
    on_thread("text", type(pipe.text_encoder), "forward")
    on_thread("scheduler", type(pipe.scheduler), "step")
    recomputing = StoryRenderer(sdxl, SMALL, tmp_path / "b", identity_ram_bytes=1)
    recomputed = recomputing.render_panels(page, cast, style="comic", seed=3)
    assert recomputing.last_policy == "recompute"
    # the read pass's calls and every write pass's calls, all on this thread
    assert len(calls["unet"]) == (len(names) + 1) * SMALL.steps
    # a write pass is stopped once its last step is handed on, before its scheduler steps
    assert len(calls["scheduler"]) == SMALL.steps + len(names) * (SMALL.steps - 1)
    assert len(calls["text"]) >= len(names) + 1
    assert {t for made in calls.values() for t in made} == {threading.get_ident()}
    assert np.array_equal(np.asarray(stored[0].image), np.asarray(recomputed[0].image))
