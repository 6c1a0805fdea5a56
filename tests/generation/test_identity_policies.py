"""The identity data of a render fits its budgets: whole stores, streamed from disk,
evicted and rebuilt, or recomputed beside the panels, and the page is the same bytes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from storyloom.generation.consistent_attention import RoutedProcessor
from storyloom.generation.identity_store import IdentityStore
from storyloom.generation.models import LoadedModel, load_pipeline
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


def test_a_failed_or_cancelled_recompute_stops_its_identity_passes(
    sdxl: LoadedModel, tmp_path: Path
) -> None:
    renderer = StoryRenderer(sdxl, SMALL, tmp_path, identity_ram_bytes=1)
    with pytest.raises(Exception, match="cancelled"):
        renderer.render_panels(PAGE, CAST, style="comic", seed=5, should_cancel=lambda: True)
    assert renderer.last_policy == "recompute"
    assert not [t for t in threading.enumerate() if t.name.startswith("identity-")]
    processors = renderer.pipe.unet.attn_processors.values()
    assert not [p for p in processors if isinstance(p, RoutedProcessor)]


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


def test_recompute_runs_every_unet_call_on_the_read_pass_thread(
    sdxl: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # found by the memory benchmark: UNet calls made on 8 write pass threads kept 8 calls'
    # activations in 8 glibc arenas (293 MiB of peak RSS above a plain page against a
    # 21 MiB budget), even taking turns; on one thread they reuse the same memory
    names = ["Mira", "Tom", "Ada"]
    cast = {
        n: CharacterSpec(n, f"{n} in a yellow raincoat", seed=30 + i) for i, n in enumerate(names)
    }
    page = [PanelSpec(1, "[Mira], [Tom] and [Ada] at the pier", ("Mira", "Tom", "Ada"))]
    stored = StoryRenderer(sdxl, SMALL, tmp_path / "a").render_panels(
        page, cast, style="comic", seed=3
    )
    unet_type = type(sdxl.pipeline.unet)  # type: ignore[attr-defined]
    real_forward = unet_type.forward
    threads: list[int] = []

    def counted(self: object, *args: object, **kwargs: object) -> object:
        threads.append(threading.get_ident())
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(unet_type, "forward", counted)
    recomputing = StoryRenderer(sdxl, SMALL, tmp_path / "b", identity_ram_bytes=1)
    recomputed = recomputing.render_panels(page, cast, style="comic", seed=3)
    assert recomputing.last_policy == "recompute"
    # the read pass's calls and every write pass's calls, all on this thread
    assert len(threads) == (len(names) + 1) * SMALL.steps
    assert set(threads) == {threading.get_ident()}
    assert np.array_equal(np.asarray(stored[0].image), np.asarray(recomputed[0].image))
