"""The heap's free pages go back to the system after a render (glibc), and nothing breaks
where the C library cannot do that."""

from __future__ import annotations

import ctypes
import os

import pytest

from storyloom.generation import heap

PAGE = os.sysconf("SC_PAGE_SIZE")


def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def test_freed_blocks_between_live_ones_are_given_back() -> None:
    if heap._malloc_trim() is None:
        pytest.skip("this C library has no malloc_trim: it gives memory back on its own")
    # 64 KiB blocks (below glibc's mmap threshold: they come from the heap), each followed
    # by a small block that stays, so the freed ones are holes glibc keeps resident
    blocks, keep = [], []
    for _ in range(1024):
        block = bytearray(64 * 1024)
        block[::PAGE] = b"x" * len(block[::PAGE])  # touch every page
        blocks.append(block)
        keep.append(bytearray(2048))
    del blocks
    before = resident()
    assert heap.give_back_freed_memory()
    assert before - resident() > 32 * 1024**2  # of the 64 MiB freed
    assert len(keep) == 1024


def test_without_malloc_trim_nothing_is_given_back_and_nothing_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_such_symbol(name: object) -> object:
        raise OSError("not here")

    heap._malloc_trim.cache_clear()
    monkeypatch.setattr(ctypes, "CDLL", no_such_symbol)
    try:
        assert heap.give_back_freed_memory() is False
    finally:
        monkeypatch.undo()
        heap._malloc_trim.cache_clear()


CHILD = """
import ctypes, os, sys
from storyloom.generation import heap
page = os.sysconf("SC_PAGE_SIZE")
def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
raise_it = bytearray(16 * 1024**2)  # mapped; freeing it raises glibc's threshold to 16 MiB
del raise_it
if sys.argv[1] == "fixed":
    assert heap.map_large_blocks()
block, keep = bytearray(2 * 1024**2), bytearray(4096)  # keep: the block is not the top
block[::page] = b"x" * len(block[::page])
before = resident()
del block
print(before - resident())
"""


@pytest.mark.parametrize("threshold", ["dynamic", "fixed"])
def test_a_freed_large_block_goes_back_at_once_only_with_the_fixed_threshold(
    threshold: str,
) -> None:
    import subprocess
    import sys

    if heap._malloc_trim() is None:
        pytest.skip("not glibc: its mmap threshold does not apply")
    run = [sys.executable, "-c", CHILD, threshold]
    done = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    given_back = int(done.stdout)
    if threshold == "fixed":  # a 2 MiB block: under 4 MiB, large enough to map
        assert given_back >= 7 * 1024**2 // 4
    else:  # the dynamic threshold put the block in the heap, where it stays
        assert given_back < 1024**2
