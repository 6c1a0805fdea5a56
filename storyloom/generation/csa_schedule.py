"""When consistent attention runs: at every layer call, or on the reference method's schedule.

``every-step``: every CSA layer call of every step attends to identity tokens.

``reference`` (StoryDiffusion's schedule, the one its published scores come from): the
first denoising step uses plain attention; after it, each layer call skips consistent
attention (plain attention instead) with probability 0.3 up to step 20 and 0.1 after.
A write pass banks its tokens at every layer call, skipped or not, because the read pass
draws its own skips: a layer the write pass skipped may be one a panel reads.

The draws come from one ``torch.Generator`` per *unit* (the whole batch of a write pass,
as the reference denoises the identity images together; each panel of a read batch, as
the reference renders panels one at a time), seeded from the character's or the panel's
seed: the same seed gives the same skips, in any batch, in any process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch

Schedule = Literal["reference", "every-step"]
SCHEDULES: tuple[str, ...] = get_args(Schedule)
EARLY_STEPS = 20  # up to this step the reference skips more often
EARLY_SKIP, LATE_SKIP = 0.3, 0.1


def skip_probability(step: int) -> float:
    """Chance that a layer call at ``step`` (from 0) uses plain attention."""
    if step == 0:
        return 1.0
    return EARLY_SKIP if step < EARLY_STEPS else LATE_SKIP


class SkipSchedule:
    """The reference schedule's draws for one pass: one generator per unit."""

    def __init__(self, seeds: Sequence[int]):
        if not seeds:
            raise ValueError("a skip schedule needs one seed per unit")
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.calls = 0  # layer calls drawn for (each draws one number per unit)

    def skips(self, step: int) -> list[bool]:
        """For a layer call at ``step``: whether each unit uses plain attention."""
        probability = skip_probability(step)
        if probability >= 1.0:  # the first step: plain, and nothing drawn
            return [True] * len(self.generators)
        self.calls += 1
        return [float(torch.rand(1, generator=g)) < probability for g in self.generators]


def schedule_for(name: str, seeds: Sequence[int]) -> SkipSchedule | None:
    """The draws of a pass under schedule ``name`` (None: consistent attention everywhere)."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown CSA schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    return SkipSchedule(seeds) if name == "reference" else None
