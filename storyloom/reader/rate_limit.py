"""Requests per client address: a token bucket each, in memory, bounded in size."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_ADDRESSES = 10_000  # beyond this, buckets that have refilled are forgotten


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimit:
    """`per_minute` requests a minute per address, with bursts of up to `burst`."""

    def __init__(
        self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, address: str) -> float:
        """Spend one request of `address`: 0.0 if allowed, else the seconds until one is."""
        now = self._clock()
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= MAX_ADDRESSES:
                self._forget_full(now)
            bucket = self._buckets[address] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate if self._rate else float("inf")

    def _forget_full(self, now: float) -> None:
        # a bucket that would be full again is the same as no bucket
        full = [
            address
            for address, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.at) * self._rate >= self._burst
        ]
        for address in full:
            del self._buckets[address]
        if len(self._buckets) >= MAX_ADDRESSES:  # all busy: drop the oldest
            oldest = sorted(self._buckets, key=lambda a: self._buckets[a].at)
            for address in oldest[: len(oldest) // 2]:
                del self._buckets[address]
