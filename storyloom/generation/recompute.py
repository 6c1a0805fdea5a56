"""The recompute policy: identity tokens made beside the read pass, nothing stored.

Where not even one step of every shown character's store fits the RAM budget, each read
batch runs the write pass of every character it shows in a thread of its own, on the same
UNet, in lockstep with the read pass: a write pass hands each finished step on to the
read pass through a one-slot relay and waits until it is taken, so no pass runs ahead of
the read pass by more than a step. The write passes are the lock passes themselves (same spec, same
seeds, same generator), so the panels are identical to those read from a saved store.
The write passes' UNet calls run on the read pass's own thread, one at a time, while it
waits for their tokens (a `UNetDesk` per pass, so waiting for one pass's step runs that
pass's call and no other's): the write pass threads only encode prompts and step their
schedulers. glibc gives every thread that allocates its own heap ("arena") and
keeps what a thread freed in that arena, so UNet calls made on 8 threads kept 8 calls'
activations resident (measured: 293 MiB of peak RSS above a plain page for 8 characters,
against a 21 MiB budget; taking turns on the UNet did not help, since each arena still
grew to one call's size). On one thread the write and read passes reuse the same memory.
A pass hands its step on only after its UNet call returned, from its own thread, so the
read pass never waits on a call it has not run.
The relayed step does not wait in memory either: recompute is chosen because one step of
every shown character is over the RAM budget. Each layer is written to a spool file beside
the stores as it is banked, and read back when the read pass's layer runs, as a streamed
store's layers are: one layer of every character is resident, not a step (measured with
`benchmarks/memory.py`: see `StepSpool`).
Cost: K identity images per character per batch, at every step.
"""

from __future__ import annotations

import copy
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from storyloom.generation.consistent_attention import CSARoutes, CSAState
from storyloom.generation.identity_store import (
    IdentitySpec,
    IdentityStore,
    StoreMismatchError,
    StoreWriter,
)

POLL_S = 0.05  # how often a blocked side looks whether the other one stopped
Item = tuple[int, float, "list[SpooledLayer] | None"]


class RelayClosed(Exception):
    """The read pass is over (done, failed or cancelled): the write pass stops."""


class UNetDesk:
    """UNet calls handed over by write pass threads, run by the read pass's thread while it
    waits for their tokens (so every UNet call's memory comes from that one thread)."""

    def __init__(self, routes: CSARoutes):
        self.routes = routes
        self.owner = threading.get_ident()  # the thread that serves the calls
        self._inbox: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self.closed = threading.Event()

    def call(self, state: CSAState, scheduler: Any, unet: Any, *args: Any, **kwargs: Any) -> Any:
        """From a write pass thread: run ``unet`` on the serving thread, routed to ``state``;
        raise RelayClosed if the read pass ended before the call ran."""

        def run() -> Any:
            before = self.routes.current()
            self.routes.bind(state, scheduler)
            try:  # grad mode is per thread: the serving thread may not be in inference mode
                with torch.inference_mode():
                    return unet(*args, **kwargs)
            finally:
                self.routes.restore(before)

        done: Future[Any] = Future()
        self._inbox.put((run, done))
        while True:
            try:
                return done.result(timeout=POLL_S)
            except TimeoutError:
                # nobody serves a closed desk; a call already running is finished first
                if self.closed.is_set() and done.cancel():
                    raise RelayClosed from None

    def nudge(self) -> None:
        """Wake the serving thread: a step was handed on, or a pass ended."""
        self._inbox.put(None)

    def serve(self, timeout: float = POLL_S) -> None:
        """Run the calls waiting, or wait up to ``timeout`` for one (or for a nudge)."""
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return
        while item is not None:
            run, done = item
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(run())
                except BaseException as error:  # the write pass raises it in its thread
                    done.set_exception(error)
                    if not isinstance(error, Exception):
                        raise
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def serve_until(self, ready: Callable[[], bool]) -> None:
        """Serve calls until ``ready()``."""
        while not ready():
            self.serve()

    def close(self) -> None:
        """No more calls are served; waiting write passes give up."""
        self.closed.set()


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


class StepRelay:
    """One finished step at a time, from a write pass to the read pass."""

    def __init__(self, name: str, desk: UNetDesk):
        self.name = name
        self.desk = desk
        self._slot: queue.Queue[Item] = queue.Queue(maxsize=1)
        self.closed = threading.Event()  # set by the read side
        self.started = threading.Event()  # the write pass handed on its first step
        self.finished = threading.Event()  # set when the write pass ended
        self.error: BaseException | None = None
        self._held: list[Item] = []  # handed on during a UNet call, sent after it

    def has_started(self) -> bool:
        """Whether the write pass handed on its first step (or ended before it could)."""
        return self.started.is_set() or self.finished.is_set()

    def hold(self, step: int, timestep: float, tokens: list[SpooledLayer] | None) -> None:
        """Keep a step handed on during a UNet call, for ``flush`` to send after it."""
        self._held.append((step, timestep, tokens))

    def flush(self) -> None:
        """Send the held steps, in order, waiting on the read pass (after the UNet call)."""
        while self._held:
            self.put(*self._held.pop(0))

    def put(self, step: int, timestep: float, tokens: list[SpooledLayer] | None) -> None:
        """Hand a step on; wait while the previous one has not been taken."""
        while not self.closed.is_set():
            try:
                self._slot.put((step, timestep, tokens), timeout=POLL_S)
                self.started.set()
                self.desk.nudge()
                return
            except queue.Full:
                continue
        raise RelayClosed

    def get(self) -> Item:
        """The next step (running write passes' UNet calls meanwhile); raise if the write
        pass failed or ended without it."""
        while True:
            try:
                return self._slot.get_nowait()
            except queue.Empty:
                if self.error is not None:
                    raise RuntimeError(f"the identity pass of {self.name} failed") from self.error
                if self.finished.is_set() and self._slot.empty():
                    raise RuntimeError(f"the identity pass of {self.name} ended early") from None
            self.desk.serve()


class RelayedStore(IdentityStore):
    """A store that is never whole: each step arrives from a running write pass, through its
    spool file."""

    def __init__(
        self,
        spec: IdentitySpec,
        layer_names: tuple[str, ...],
        relay: StepRelay,
        spool: StepSpool,
    ):
        super().__init__(spec, layer_names, [], {})
        self.relay = relay
        self.spool = spool
        self._current: tuple[int, list[SpooledLayer] | None] | None = None

    @property
    def nbytes(self) -> int:
        return 0  # nothing is stored

    def check_step(self, step: int, timestep: float) -> None:
        """Take this step from the write pass, then check it as a saved store would be."""
        self._current = None
        got, banked_at, layers = self.relay.get()
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
        """Forget the last step, which nothing reads after the denoising loop."""
        self._current = None


WriteInputs = Callable[[IdentitySpec, StoreWriter], tuple[CSAState, dict[str, Any]]]


class DeskUNet:
    """The shared UNet as one write pass sees it: each call is run by the read pass's
    thread (see `UNetDesk`); the call's finished step is handed to the read pass after it
    returned, from the write pass's own thread."""

    def __init__(self, unet: Any, desk: UNetDesk, relay: StepRelay, state: CSAState):
        self.unet = unet
        self.desk = desk
        self.relay = relay
        self.state = state
        self.scheduler: Any = None  # the write pass's own scheduler, set with its pipeline

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.relay.closed.is_set():
            raise RelayClosed
        out = self.desk.call(self.state, self.scheduler, self.unet, *args, **kwargs)
        self.relay.flush()
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.unet, name)  # config, dtype, add_embedding, ...


def _write_pass(
    pipe: Any, routes: CSARoutes, state: CSAState, inputs: dict[str, Any], relay: StepRelay
) -> None:
    """A lock pass in this thread whose tokens go to the relay (its images are not decoded)."""
    routes.bind(state, pipe.scheduler)

    def stop_when_closed(pipe: Any, call: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if relay.closed.is_set():
            raise RelayClosed
        return kwargs

    try:
        with torch.inference_mode():
            pipe(callback_on_step_end=stop_when_closed, output_type="latent", **inputs)
    except RelayClosed:
        pass
    except BaseException as error:  # handed to the read side, which raises it
        relay.error = error
    finally:
        relay.finished.set()
        relay.desk.nudge()


@contextmanager
def identity_passes(
    pipe: Any,
    routes: CSARoutes,
    specs: Sequence[IdentitySpec],
    layer_names: tuple[str, ...],
    write_inputs: WriteInputs,
    spool_dir: Path | None = None,
) -> Iterator[list[IdentityStore]]:
    """Start one write pass per spec beside the caller's read pass, whose thread runs their
    UNet calls while it waits for their tokens; stop them on exit. Their steps are spooled
    in ``spool_dir`` (the system's temporary folder without one)."""
    stores: list[IdentityStore] = []
    threads: list[tuple[threading.Thread, StepRelay]] = []
    desks: list[UNetDesk] = []
    spools: list[StepSpool] = []
    try:  # what was set up is closed below, even if a later set-up step fails
        for spec in specs:
            # a desk per write pass: waiting for one character's step runs only that pass's
            # call; one shared desk let a pass run its next step while the read pass still held
            # its last, two steps of every character at once (measured: 10 MiB more at 8)
            desk = UNetDesk(routes)
            desks.append(desk)
            relay = StepRelay(spec.name, desk)
            spool = StepSpool(spool_dir)
            spools.append(spool)
            writer = StoreWriter(spec, layer_names, relay=relay.hold, spill=spool.write)
            state, inputs = write_inputs(spec, writer)
            own = copy.copy(pipe)  # own scheduler and per-call attributes, shared modules
            own.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
            unet = DeskUNet(pipe.unet, desk, relay, state)
            unet.scheduler = own.scheduler
            # not through the pipeline's __setattr__, which would rewrite its config
            object.__setattr__(own, "unet", unet)
            thread = threading.Thread(
                target=_write_pass,
                args=(own, routes, state, inputs, relay),
                name=f"identity-{spec.name}",
                daemon=True,
            )
            threads.append((thread, relay))
            stores.append(RelayedStore(spec, layer_names, relay, spool))
        # one at a time, each past its prompt encoding before the next call starts: the
        # tokenizers keep truncation settings in shared state, so concurrent encodings of
        # long prompts come out untruncated (measured: 104 tokens for a 77-token encoder)
        for thread, relay in threads:
            thread.start()
            relay.desk.serve_until(relay.has_started)
        yield stores
    finally:
        for desk in desks:
            desk.close()
        for _, relay in threads:
            relay.closed.set()
        for thread, _ in threads:
            if thread.ident is not None:  # started
                thread.join()
        for spool in spools:
            spool.close()
