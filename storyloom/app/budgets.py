"""What the operator's budgets allow, and what is used against each (`storyloom doctor`).

Pure arithmetic over the settings and the folders: no torch, so the doctor of the slim bot
image can run it. Store sizes come from `generation/accounting.py` (real SDXL's layer
shapes), the same code that sizes the stores the renderer writes.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from storyloom.config import Settings
from storyloom.generation.accounting import sdxl_csa_layers, store_bytes, store_bytes_per_step
from storyloom.story.limits import MAX_CHARACTERS

GiB = 1024**3
MiB = 1024**2
STORE_VALUE_BYTES = {"float16": 2, "bfloat16": 2, "float8": 1}


@dataclass(frozen=True)
class IdentityBudget:
    """How identity data fits the RAM budget at these settings (SDXL-shaped)."""

    store_bytes: int  # one character's whole store
    step_bytes: int  # one step of one character's store
    ram_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityBudget:
        layers = sdxl_csa_layers(settings.width, settings.height)
        copies = 2 if settings.guidance > 1 else 1
        value = STORE_VALUE_BYTES[settings.store_dtype]
        steps = max(1, round(settings.steps * settings.store_bank_fraction))
        args = (layers, settings.identity_images, settings.csa_rate, copies)
        return cls(
            store_bytes(*args, steps, value),
            store_bytes_per_step(*args, value),
            settings.identity_ram_mib * MiB,
        )

    def whole_stores(self) -> int:
        """Stores that fit in RAM whole."""
        return self.ram_bytes // self.store_bytes

    def streamed_characters(self) -> int:
        """Characters whose stores can be streamed together (one step each resident)."""
        return self.ram_bytes // self.step_bytes


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (0 if it cannot be read)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue  # removed while we counted
    return total


def physical_ram() -> int | None:
    """This machine's RAM in bytes, where the OS says."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: float) -> str:
    return f"{n / GiB:.2f} GiB"


def identity_ram_report(settings: Settings) -> tuple[bool, str]:
    """Identity RAM budget against one store and one streamed step, and against the RAM."""
    b = IdentityBudget.from_settings(settings)
    size = f"SDXL at {settings.width}×{settings.height}, {settings.steps} steps"
    detail = (
        f"{_gib(b.ram_bytes)} budget; one store is {_gib(b.store_bytes)} ({size}): "
        f"{b.whole_stores()} held whole, {b.streamed_characters()} streamed one step "
        f"({b.step_bytes / MiB:.0f} MiB each)"
    )
    if b.streamed_characters() < MAX_CHARACTERS:
        detail += "; pages with more characters are recomputed (no store, slower)"
    ram = physical_ram()
    if ram is not None and b.ram_bytes > ram // 2:
        return False, (
            f"STORYLOOM_IDENTITY_RAM_MIB is {settings.identity_ram_mib} but this machine has "
            f"{_gib(ram)} of RAM; keep it under half"
        )
    return True, detail


def disk_report(path: Path, budget_gib: float) -> tuple[bool, str]:
    """Bytes used in a folder against its budget."""
    used = folder_bytes(path)
    budget = budget_gib * GiB
    detail = f"{_gib(used)} of {_gib(budget)} used in {path}"
    if used > budget:
        return False, detail + "; over budget until the next clean-up (or raise the budget)"
    return True, detail


def disk_free_report(settings: Settings) -> tuple[bool, str]:
    """Whether the disk can hold both budgets."""
    store, out = Path(settings.store_dir), Path(settings.output_dir)
    try:
        free = shutil.disk_usage(store if store.exists() else Path.cwd()).free
    except OSError as error:
        return False, f"cannot read free disk space: {error.strerror}"
    room = free + folder_bytes(store) + folder_bytes(out)
    wanted = (settings.store_disk_gib + settings.output_disk_gib) * GiB
    detail = f"stores + outputs may use {_gib(wanted)}; {_gib(free)} free"
    if wanted > room:
        return False, detail + ": lower STORYLOOM_STORE_DISK_GIB or STORYLOOM_OUTPUT_DISK_GIB"
    return True, detail


def caps_report(settings: Settings) -> tuple[bool, str]:
    """The caps on one job, and whether the render settings are within them."""
    detail = (
        f"≤ {settings.max_panels_per_job} panels per job, clips ≤ {settings.max_clip_seconds:g} s "
        f"and {settings.max_clip_frames} frames, results kept {settings.keep_outputs_hours:g} h "
        "after posting"
    )
    if settings.width * settings.height > settings.max_panel_pixels:
        return False, "width × height is above STORYLOOM_MAX_PANEL_PIXELS: every job is refused"
    if settings.steps > settings.max_steps:
        return False, "steps is above STORYLOOM_MAX_STEPS: every job is refused"
    return True, detail
