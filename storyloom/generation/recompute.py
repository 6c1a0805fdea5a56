"""The recompute policy: identity tokens made beside the read pass, nothing stored.

Where not even one step of every shown character's store fits the RAM budget, each read
batch runs the write pass of every character it shows beside it, on the same UNet, in
lockstep with the read pass: a write pass hands each finished step on to the read pass
and pauses until the read pass asks for the next one, so no pass runs ahead of the read
pass by more than a step. The write passes are the lock passes themselves (same spec, same
seeds, same generator), so the panels are identical to those read from a saved store.

Every pass runs on the read pass's own thread, each write pass in a greenlet of its own
that the read pass resumes when it needs that character's next step (`WritePass`). Memory
follows the thread that allocates it: glibc gives every thread its own heap ("arena") and
keeps what a thread freed there. Write passes run in threads of their own kept 8 calls'
activations in 8 arenas (293 MiB of peak RSS above a plain page for 8 characters, against
a 21 MiB budget); with only their UNet calls moved to the read pass's thread, their prompt
encodings and scheduler steps still left 6 to 8 MiB resident in their arenas, and the
page peaked 11 to 18 MiB above a plain page against a 10.5 MiB budget (benchmarks/memory.py).
On one thread, one after the other, the passes reuse the same memory.

The relayed step does not wait in memory either: recompute is chosen because one step of
every shown character is over the RAM budget. Each layer is written to a spool file beside
the stores as it is banked, and read back when the read pass's layer runs, as a streamed
store's layers are: one layer of every character is resident, not a step (see `StepSpool`).
Cost: K identity images per character per batch, at every step.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from greenlet import greenlet

from storyloom.generation.consistent_attention import CSARoutes, CSAState
from storyloom.generation.identity_store import (
    IdentitySpec,
    IdentityStore,
    StoreMismatchError,
    StoreWriter,
)

Item = tuple[int, float, "list[SpooledLayer] | None"]


class RelayClosed(Exception):
    """The read pass is over (done, failed or cancelled): the write pass stops."""


@dataclass(frozen=True)
class SpooledLayer:
    """Where one relayed layer's tokens lie in a spool file."""

    offset: int
    nbytes: int
    dtype: torch.dtype
    shape: tuple[int, ...]


class StepSpool:
    """A write pass's current step in an unlinked file, not in memory: each layer is written
    as the write pass banks it and read back when the read pass's layer runs. The page cache
    keeps the file while the system has room and writes it out when it has not, so the step
    costs the process one layer at a time. Each step is written over the last one: the read
    pass is done with step t before the write pass's call for step t + 1 runs, since that
    call runs on the read pass's thread while it waits for step t + 1."""

    def __init__(self, directory: Path | None):
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=".relay-", dir=directory)
        os.unlink(path)  # gone with the descriptor, even after a crash
        self._fd = fd
        self._step = -1
        self._end = 0

    def write(self, step: int, layer: int, tokens: torch.Tensor) -> SpooledLayer:
        """Put one layer of ``step`` in the file (a new step starts the file over)."""
        if step != self._step:
            self._step, self._end = step, 0
        raw = tokens.contiguous().reshape(-1).view(torch.uint8).numpy().data
        done = 0
        while done < raw.nbytes:
            done += os.pwrite(self._fd, raw[done:], self._end + done)
        spooled = SpooledLayer(self._end, raw.nbytes, tokens.dtype, tuple(tokens.shape))
        self._end += raw.nbytes
        return spooled

    def read(self, layer: SpooledLayer) -> torch.Tensor:
        """One layer's tokens, read from the file now."""
        if layer.nbytes == 0:
            return torch.empty(layer.shape, dtype=layer.dtype)
        data = bytearray(layer.nbytes)
        if os.preadv(self._fd, [data], layer.offset) != layer.nbytes:
            raise StoreMismatchError("an identity pass's spool file is truncated")
        return torch.frombuffer(data, dtype=layer.dtype).reshape(layer.shape)

    def close(self) -> None:
        os.close(self._fd)


class WritePass:
    """One character's write pass, run in a greenlet on the read pass's thread: it runs
    until it has handed a step on, then pauses until the read pass asks for the next.

    The greenlet's parent is the read pass (the greenlet that made it), which resumes it
    from `get`; a paused pass goes back to it, and `close` ends it there. Grad and
    inference mode are per thread, so shared with the read pass: `identity_passes` holds
    inference mode over all of them, and no switch changes it."""

    def __init__(self, name: str, routes: CSARoutes):
        self.name = name
        self.routes = routes
        self.error: Exception | None = None
        self._route: tuple[CSAState, Any] | None = None  # its state and own scheduler
        self._held: list[Item] = []  # handed on during a UNet call, sent after it
        self._handed: Item | None = None  # the step handed on and not yet taken
        self._run: greenlet | None = None

    def start(self, pipe: Any, state: CSAState, inputs: dict[str, Any]) -> None:
        """Run the pass (``pipe``: its own pipeline and scheduler, CSA ``state``) up to its
        first step handed on, or its end."""
        self._route = (state, pipe.scheduler)
        self._run = greenlet(lambda: self._main(pipe, inputs))
        self._run.switch()

    def _main(self, pipe: Any, inputs: dict[str, Any]) -> None:
        try:
            pipe(output_type="latent", **inputs)
        except RelayClosed:
            pass
        except Exception as error:  # handed to the read side, which raises it
            self.error = error

    @property
    def finished(self) -> bool:
        return self._run is not None and self._run.dead

    def hold(self, step: int, timestep: float, tokens: list[SpooledLayer] | None) -> None:
        """Keep a step handed on during a UNet call, for the pass to send after it."""
        self._held.append((step, timestep, tokens))

    def unet_call(self, unet: Any, *args: Any, **kwargs: Any) -> Any:
        """The write pass's UNet call, routed to its state; then its finished step goes to
        the read pass, and the pass pauses until the read pass wants the next one."""
        assert self._route is not None and self._run is not None and self._run.parent is not None
        before = self.routes.current()
        self.routes.bind(*self._route)
        try:
            out = unet(*args, **kwargs)
        finally:
            self.routes.restore(before)
        while self._held:  # the read pass resumes this pass only once it took the last step
            self._handed = self._held.pop(0)
            self._run.parent.switch()
        return out

    def get(self) -> Item:
        """The next step (running the pass until it hands it on); raise if the pass failed
        or ended without it."""
        while self._handed is None:
            if self.error is not None:
                raise RuntimeError(f"the identity pass of {self.name} failed") from self.error
            if self._run is None or self._run.dead:
                raise RuntimeError(f"the identity pass of {self.name} ended early")
            self._run.switch()
        item, self._handed = self._handed, None
        return item

    def close(self) -> None:
        """Stop the pass where it paused (its cleanup runs now, on this thread)."""
        if self._run:  # started, not ended
            self._run.throw(RelayClosed)


class RelayedStore(IdentityStore):
    """A store that is never whole: each step arrives from a running write pass, through its
    spool file."""

    def __init__(
        self,
        spec: IdentitySpec,
        layer_names: tuple[str, ...],
        write_pass: WritePass,
        spool: StepSpool,
    ):
        super().__init__(spec, layer_names, [], {})
        self.write_pass = write_pass
        self.spool = spool
        self._current: tuple[int, list[SpooledLayer] | None] | None = None

    @property
    def nbytes(self) -> int:
        return 0  # nothing is stored

    def check_step(self, step: int, timestep: float) -> None:
        """Take this step from the write pass, then check it as a saved store would be."""
        self._current = None
        got, banked_at, layers = self.write_pass.get()
        if got != step:
            raise StoreMismatchError(f"the identity pass of {self.spec.name} is out of step")
        self.timesteps.append(banked_at)
        self._current = (step, layers)
        super().check_step(step, timestep)

    def _layers(self, step: int) -> list[SpooledLayer] | None:
        if self._current is None or self._current[0] != step:
            return None
        return self._current[1]

    def step_tokens(self, step: int) -> list[torch.Tensor] | None:
        layers = self._layers(step)
        return None if layers is None else [self.spool.read(layer) for layer in layers]

    def has_step(self, step: int) -> bool:
        return self._layers(step) is not None

    def layer_tokens(self, step: int, layer: int) -> torch.Tensor:
        layers = self._layers(step)
        if layers is None:
            raise StoreMismatchError(f"the identity pass of {self.spec.name} is out of step")
        return self.spool.read(layers[layer])

    def release(self) -> None:
        """The denoising loop is over: forget the last step and stop the write pass now, so
        the VAE decode (a page's peak memory) runs without the passes' latents, embeddings
        and last step, which a paused pass holds (measured: 4.3 MiB of 8 passes' live
        data at the decode, on the benchmarks/memory.py page)."""
        self._current = None
        self.write_pass.close()


WriteInputs = Callable[[IdentitySpec, StoreWriter], tuple[CSAState, dict[str, Any]]]


class PassUNet:
    """The shared UNet as one write pass sees it (see `WritePass.unet_call`)."""

    def __init__(self, unet: Any, write: WritePass):
        self.unet = unet
        self.write = write

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.write.unet_call(self.unet, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.unet, name)  # config, dtype, add_embedding, ...


@contextmanager
def identity_passes(
    pipe: Any,
    routes: CSARoutes,
    specs: Sequence[IdentitySpec],
    layer_names: tuple[str, ...],
    write_inputs: WriteInputs,
    spool_dir: Path | None = None,
) -> Iterator[list[IdentityStore]]:
    """Start one write pass per spec beside the caller's read pass, on the caller's thread,
    each up to its first step; stop them on exit. Their steps are spooled in ``spool_dir``
    (the system's temporary folder without one). The block runs in inference mode."""
    stores: list[IdentityStore] = []
    passes: list[WritePass] = []
    spools: list[StepSpool] = []
    with torch.inference_mode():
        try:  # what was set up is closed below, even if a later set-up step fails
            for spec in specs:
                write = WritePass(spec.name, routes)
                passes.append(write)
                spool = StepSpool(spool_dir)
                spools.append(spool)
                writer = StoreWriter(spec, layer_names, relay=write.hold, spill=spool.write)
                state, inputs = write_inputs(spec, writer)
                own = copy.copy(pipe)  # own scheduler and per-call attributes, shared modules
                own.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
                # not through the pipeline's __setattr__, which would rewrite its config
                object.__setattr__(own, "unet", PassUNet(pipe.unet, write))
                stores.append(RelayedStore(spec, layer_names, write, spool))
                write.start(own, state, inputs)
            yield stores
        finally:
            for write in passes:
                write.close()
            for spool in spools:
                spool.close()
