"""Progress of a running job for the chat side: panel i of n, percent, time left.

A render reports every denoising step; chat messages may be edited only every few seconds,
and every report written to the job row is a database write. `ProgressMeter` turns the
renderer's step reports into at most one `JobProgress` every `every_s` seconds (and always
the last one), with an estimate of the time left from the pace so far, and, at most every
`preview_every_s` seconds, a small preview image of the batch being denoised (decoded from
its latents by `make_preview`; a chat platform limits edits with files more than text).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the renderer needs torch; the chat side only reads progress
    from storyloom.generation.renderer import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobProgress:
    """Where a running job is: `done` of `total` steps, which panel, and seconds left."""

    done: int
    total: int
    panel: int  # 1-based: the first panel of the batch being denoised
    panels: int  # 0 for a character sheet (its images are not panels of the story)
    eta_s: float | None  # None until the pace is known
    # a small JPEG of the batch being denoised, now and then (not in the row's JSON: the
    # row keeps it in a column of its own)
    preview: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def percent(self) -> int:
        """Whole percent done."""
        return 100 * self.done // self.total if self.total else 0

    def to_json(self) -> str:
        """The compact form kept on the job row (well under its 200 characters)."""
        eta = None if self.eta_s is None else round(self.eta_s, 1)
        fields: dict[str, object] = {"done": self.done, "total": self.total}
        fields |= {"panel": self.panel, "panels": self.panels, "eta_s": eta}
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> JobProgress:
        """Read back `to_json`."""
        fields = json.loads(text)
        return cls(
            int(fields["done"]),
            int(fields["total"]),
            int(fields["panel"]),
            int(fields["panels"]),
            None if fields["eta_s"] is None else float(fields["eta_s"]),
        )

    def describe(self) -> str:
        """One short line for a status message."""
        left = "" if self.eta_s is None else f", about {max(1, round(self.eta_s))} s left"
        where = f"panel {self.panel} of {self.panels}, " if self.panels else ""
        return f"{where}{self.percent}%{left}"


@dataclass
class ProgressMeter:
    """Throttles step reports into `JobProgress` values passed to `emit`."""

    panels: int
    emit: Callable[[JobProgress], None]
    first_panel: int = 1  # the renderer numbers panels by beat position; shown from 1
    every_s: float = 3.0
    clock: Callable[[], float] = time.monotonic
    # latents → preview image bytes (generation/preview.latent_preview); None: no previews
    make_preview: Callable[[Any], bytes] | None = None
    preview_every_s: float = 10.0
    _start: tuple[float, int] | None = field(default=None, init=False)  # (time, done)
    _last: float | None = field(default=None, init=False)
    _previewed: float | None = field(default=None, init=False)

    def __call__(self, report: Progress) -> None:
        """Take one step report (the renderer's `on_progress`)."""
        now = self.clock()
        if self._start is None:
            # the first report comes after a step of unknown length (it includes the
            # model's warm-up): the pace is measured from here on
            self._start = (now, report.done)
        finished = report.done >= report.total
        if not finished and self._last is not None and now - self._last < self.every_s:
            return
        self._last = now
        since, done_then = self._start
        steps = report.done - done_then
        eta = (now - since) / steps * (report.total - report.done) if steps > 0 else None
        panel = report.panels[0] - self.first_panel + 1 if report.panels else 1
        preview = None if finished else self._preview(now, report.latents)
        self.emit(JobProgress(report.done, report.total, panel, self.panels, eta, preview))

    def _preview(self, now: float, latents: Any) -> bytes | None:
        """A preview when one is due; a preview that fails ends previews, never the render."""
        if self.make_preview is None or latents is None:
            return None
        if self._previewed is not None and now - self._previewed < self.preview_every_s:
            return None
        self._previewed = now
        try:
            return self.make_preview(latents)
        except Exception:
            log.warning("progress previews stopped: the latents could not be drawn", exc_info=True)
            self.make_preview = None
            return None
