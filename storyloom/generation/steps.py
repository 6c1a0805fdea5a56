"""How a scheduler's UNet calls map to denoising steps.

Identity stores are keyed by denoising step, never by UNet call, because some schedulers
call the UNet more than once per step:

- second-order ones (Heun, KDPM2, KDPM2 ancestral, DPM-SDE) call it twice per step except
  the last (4 steps make 7 calls) and say which half they are in with
  ``state_in_first_order``: a step starts at a call made in the first-order state;
- PNDM's PLMS mode makes its first step in two calls at the same timestep (4 steps, 5
  calls: 750, 500, 500, 250, 0): for first-order schedulers a call at the same timestep
  as the one before stays on that step.

The store banks a step's tokens at its first call; later calls of the step bank nothing
new and read the same tokens. Schedulers whose calls follow neither pattern (PNDM with its
Runge-Kutta warm-up: 4 steps make 13 calls at 7 timesteps) are refused before any work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class SchedulerError(ValueError):
    """The scheduler's UNet calls cannot be mapped to denoising steps."""


def second_order(scheduler: Any) -> bool:
    """Whether the scheduler makes two UNet calls per step (it tracks which half it is in)."""
    return hasattr(type(scheduler), "state_in_first_order")


def starts_step(scheduler: Any | None, timestep: float, previous: float | None) -> bool:
    """Whether the UNet call about to run at ``timestep`` begins a new denoising step."""
    if previous is None or scheduler is None:
        return True
    if second_order(scheduler):
        return bool(scheduler.state_in_first_order)
    return timestep != previous


def _runs(timesteps: Sequence[float]) -> int:
    """Steps of a first-order schedule: runs of equal consecutive timesteps."""
    return sum(1 for i, t in enumerate(timesteps) if i == 0 or t != timesteps[i - 1])


def check_scheduler(scheduler: Any, steps: int) -> None:
    """Raise SchedulerError unless the UNet calls of a ``steps``-step run map to ``steps``
    denoising steps."""
    probe = type(scheduler).from_config(scheduler.config)
    probe.set_timesteps(steps)
    timesteps = [float(t) for t in probe.timesteps]
    calls_per_step_ok = (
        len(timesteps) == 2 * steps - 1 if second_order(scheduler) else _runs(timesteps) == steps
    )
    if not calls_per_step_ok:
        name = type(scheduler).__name__
        hint = "; set skip_prk_steps" if "skip_prk_steps" in probe.config else ""
        raise SchedulerError(
            f"{name} calls the UNet {len(timesteps)} times for {steps} steps in a pattern "
            f"consistent attention cannot key by step; choose another scheduler{hint}"
        )


def steps_done(scheduler: Any, call: int) -> int:
    """Denoising steps begun by UNet call ``call`` (from 0) and the calls before it; after
    the last call of a run it is the number of steps."""
    if second_order(scheduler):
        return (call + 2) // 2
    return _runs([float(t) for t in scheduler.timesteps[: call + 1]])
