"""Stores on disk: streamed step by step bit for bit, kept under an LRU byte budget."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from storyloom.generation.identity_store import (
    STORE_DTYPES,
    IdentitySpec,
    IdentityStore,
    StoreMismatchError,
)
from storyloom.generation.store_files import StoreShelf, StreamedStore


def store(name: str, dtype: str = "float16", steps: int = 3) -> IdentityStore:
    spec = IdentitySpec(name, "d", "comic", 1, ("a", "b"), "m", 64, 64, steps, "s", 5.0, 0.5,
                        dtype)  # fmt: skip
    torch.manual_seed(len(name))
    kind = STORE_DTYPES[dtype]
    tokens = {step: [torch.randn(2, 2, 5, 8).to(kind) for _ in range(2)] for step in range(steps)}
    return IdentityStore(spec, ("l0", "l1"), [999.0 - 300 * s for s in range(steps)], tokens)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float8"])
def test_a_streamed_store_gives_each_step_bit_for_bit_and_nothing_up_front(
    tmp_path: Path, dtype: str
) -> None:
    saved = store("Mira", dtype)
    streamed = StreamedStore(saved.save(tmp_path))
    assert streamed.spec == saved.spec and streamed.timesteps == saved.timesteps
    assert streamed.tokens == {}  # nothing held
    for step, layers in saved.tokens.items():
        got = streamed.step_tokens(step)
        assert got is not None
        for a, b in zip(got, layers, strict=True):
            assert a.dtype == b.dtype and torch.equal(a.view(torch.uint8), b.view(torch.uint8))
    assert streamed.step_tokens(99) is None


def test_a_streamed_store_stays_readable_after_its_file_is_evicted(tmp_path: Path) -> None:
    saved = store("Mira")
    streamed = StreamedStore(saved.save(tmp_path))
    os.unlink(streamed.path)
    assert torch.equal(streamed.step_tokens(2)[0], saved.tokens[2][0])  # type: ignore[index]


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(StoreMismatchError, match="not a storyloom identity store"):
        StreamedStore(tmp_path / "x.safetensors")


def test_the_shelf_evicts_the_least_recently_used_stores_past_its_budget(tmp_path: Path) -> None:
    a, b, c = store("Ann"), store("Bob"), store("Cleo")
    size = a.save(tmp_path / "probe").stat().st_size
    shelf = StoreShelf(tmp_path / "shelf", budget_bytes=2 * size + size // 2)
    shelf.put(a)
    shelf.put(b)
    past = time.time() - 60
    os.utime(shelf.path(b.key), (past, past))
    os.utime(shelf.path(a.key), (past - 60, past - 60))
    shelf.touch(a.key)  # Ann used just now: Bob is the least recently used
    shelf.put(c)
    assert (shelf.has(a.key), shelf.has(b.key), shelf.has(c.key)) == (True, False, True)
    assert shelf.evicted == 1 and shelf.used_bytes() <= shelf.budget_bytes  # type: ignore[operator]
    # a store larger than the whole budget is not kept, and evicts nothing it cannot save
    tiny = StoreShelf(tmp_path / "tiny", budget_bytes=size // 2)
    assert tiny.put(a) is None and not tiny.has(a.key)
