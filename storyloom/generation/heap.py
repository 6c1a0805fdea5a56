"""Giving the heap memory a render freed back to the system (glibc only).

glibc keeps the memory a process frees: chunks inside its heaps stay resident, and up to
twice its mmap threshold (which grows, up to 32 MiB, as large blocks are freed) stays at
each heap's top. After a render that is tens of MiB that the worker no longer uses but
still holds, and how much depends on the renders before, so a render's resident memory
above its start varied by 30 MiB for the same page (benchmarks/memory.py: 16 to 48 MiB
above the start, with the same 49 MiB of live allocations at the peak). ``malloc_trim``
returns the free pages; other C libraries lack it and give memory back on their own.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


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


def give_back_freed_memory() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    trim = _malloc_trim()
    return trim is not None and bool(trim(0))
