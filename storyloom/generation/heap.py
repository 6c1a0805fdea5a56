"""The heap a render leaves behind: given back to the system, and placed the same way on
every render (glibc only; other C libraries are left as they are).

glibc keeps the memory a process frees: chunks inside its heaps stay resident, and up to
twice its mmap threshold (which grows, up to 32 MiB, as large blocks are freed) stays at
each heap's top. After a render that is tens of MiB that the worker no longer uses but
still holds, and how much depends on the renders before, so a render's resident memory
above its start varied by 30 MiB for the same page (benchmarks/memory.py: 16 to 48 MiB
above the start, with the same 49 MiB of live allocations at the peak). ``malloc_trim``
returns the free pages; a fixed mmap threshold keeps large blocks out of the heap.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_BLOCK = 256 * 1024


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        process = ctypes.CDLL(None)  # the C library this process already runs on
    except OSError:
        return None
    trim = getattr(process, "malloc_trim", None)
    if trim is None:  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


@functools.cache
def map_large_blocks() -> bool:
    """Have glibc give every block of 256 KiB or more its own mapping, returned when freed,
    for the rest of the process; False where the C library cannot.

    glibc raises its mmap threshold (up to 32 MiB) each time a mapped block is freed, after
    which large tensors come from the heap and what they free stays there, placed by the
    renders before: the same page peaked 16 to 48 MiB above its start. Fixed at 4 MiB, the
    blocks under it still came from the heap, and the same plain page peaked 64 to 109 MiB
    above its start with 49 MiB of live allocations at its peak (the benchmarks/memory.py
    set-up), a noise larger than the identity data the benchmark measures. Fixed at
    256 KiB, the peak is the live allocations: 48.7 and 49.0 MiB against 49.0. Cost, the
    same page alternated in one process: 11.62 s against 11.35 s and 12.26 s against
    11.74 s (2 to 4 %), of which 0.1 to 0.3 s more system time (page faults of fresh
    mappings); a whole benchmarks/memory.py run, more allocation-heavy, took 7 min 15 s
    against 6 min 37 s and 6 min 48 s, with 52 s of system time against 12 and 15 s. A
    GPU worker's host blocks are mostly smaller than that."""
    if _malloc_trim() is None:  # not glibc: its mallopt parameters mean other things
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK))


def give_back_freed_memory() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    trim = _malloc_trim()
    return trim is not None and bool(trim(0))
