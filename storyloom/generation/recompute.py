"""The recompute policy: identity tokens made beside the read pass, nothing stored.

Where not even one step of every shown character's store fits the RAM budget, each read
batch runs the write pass of every character it shows in a thread of its own, on the same
UNet, in lockstep with the read pass: a write pass hands each finished step's tokens to
the read pass through a one-slot relay and waits until it is taken, so about one step per
character is resident. The write passes are the lock passes themselves (same spec, same
seeds, same generator), so the panels are identical to those read from a saved store.
The write passes take turns on the UNet: one write pass's UNet call runs at a time, so
one pass's activations are resident rather than every character's at once (measured
before: 327 MiB of peak RSS above a plain page for 8 characters, against a 21 MiB budget).
A pass hands its step on only after its UNet call returned and its turn was given back,
so a pass waiting for the read pass never holds the turn another pass needs.
Cost: K identity images per character per batch, at every step.
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
Item = tuple[int, float, "list[torch.Tensor] | None"]


class RelayClosed(Exception):
    """The read pass is over (done, failed or cancelled): the write pass stops."""


class StepRelay:
    """One finished step at a time, from a write pass to the read pass."""

    def __init__(self, name: str):
        self.name = name
        self._slot: queue.Queue[Item] = queue.Queue(maxsize=1)
        self.closed = threading.Event()  # set by the read side
        self.started = threading.Event()  # the write pass handed on its first step
        self.finished = threading.Event()  # set when the write pass ended
        self.error: BaseException | None = None
        self._held: list[Item] = []  # handed on during a UNet call, sent after it

    def hold(self, step: int, timestep: float, tokens: list[torch.Tensor] | None) -> None:
        """Keep a step handed on during a UNet call, for ``flush`` to send after it."""
        self._held.append((step, timestep, tokens))

    def flush(self) -> None:
        """Send the held steps, in order, waiting on the read pass (outside any turn)."""
        while self._held:
            self.put(*self._held.pop(0))

    def put(self, step: int, timestep: float, tokens: list[torch.Tensor] | None) -> None:
        """Hand a step on; wait while the previous one has not been taken."""
        while not self.closed.is_set():
            try:
                self._slot.put((step, timestep, tokens), timeout=POLL_S)
                self.started.set()
                return
            except queue.Full:
                continue
        raise RelayClosed

    def get(self) -> Item:
        """The next step; raise if the write pass failed or ended without it."""
        while True:
            try:
                return self._slot.get(timeout=POLL_S)
            except queue.Empty:
                if self.error is not None:
                    raise RuntimeError(f"the identity pass of {self.name} failed") from self.error
                if self.finished.is_set() and self._slot.empty():
                    raise RuntimeError(f"the identity pass of {self.name} ended early") from None


class RelayedStore(IdentityStore):
    """A store that is never whole: each step arrives from a running write pass."""

    def __init__(self, spec: IdentitySpec, layer_names: tuple[str, ...], relay: StepRelay):
        super().__init__(spec, layer_names, [], {})
        self.relay = relay
        self._current: tuple[int, list[torch.Tensor] | None] | None = None

    @property
    def nbytes(self) -> int:
        return 0  # nothing is stored

    def check_step(self, step: int, timestep: float) -> None:
        """Take this step from the write pass, then check it as a saved store would be."""
        got, banked_at, tokens = self.relay.get()
        if got != step:
            raise StoreMismatchError(f"the identity pass of {self.spec.name} is out of step")
        self.timesteps.append(banked_at)
        self._current = (step, tokens)
        super().check_step(step, timestep)

    def step_tokens(self, step: int) -> list[torch.Tensor] | None:
        if self._current is None or self._current[0] != step:
            return None
        return self._current[1]


WriteInputs = Callable[[IdentitySpec, StoreWriter], tuple[CSAState, dict[str, Any]]]


class TurnTakingUNet:
    """The shared UNet as one write pass sees it: each call waits for the turn, which the
    write passes of a batch share, and hands the call's finished step to the read pass
    only after the turn is given back (holding the turn while waiting on the read pass
    could deadlock: the read pass may be waiting on another pass that waits for the turn)."""

    def __init__(self, unet: Any, turn: threading.Lock, relay: StepRelay):
        self.unet = unet
        self.turn = turn
        self.relay = relay

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.turn:
            if self.relay.closed.is_set():
                raise RelayClosed
            out = self.unet(*args, **kwargs)
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


@contextmanager
def identity_passes(
    pipe: Any,
    routes: CSARoutes,
    specs: Sequence[IdentitySpec],
    layer_names: tuple[str, ...],
    write_inputs: WriteInputs,
) -> Iterator[list[IdentityStore]]:
    """Start one write pass per spec beside the caller's read pass; stop them on exit."""
    stores: list[IdentityStore] = []
    threads: list[tuple[threading.Thread, StepRelay]] = []
    turn = threading.Lock()  # one write pass's UNet call at a time
    for spec in specs:
        relay = StepRelay(spec.name)
        state, inputs = write_inputs(spec, StoreWriter(spec, layer_names, relay=relay.hold))
        own = copy.copy(pipe)  # own scheduler and per-call attributes, shared modules
        own.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
        # not through the pipeline's __setattr__, which would rewrite its config
        object.__setattr__(own, "unet", TurnTakingUNet(pipe.unet, turn, relay))
        thread = threading.Thread(
            target=_write_pass,
            args=(own, routes, state, inputs, relay),
            name=f"identity-{spec.name}",
            daemon=True,
        )
        threads.append((thread, relay))
        stores.append(RelayedStore(spec, layer_names, relay))
    try:
        # one at a time, each past its prompt encoding before the next call starts: the
        # tokenizers keep truncation settings in shared state, so concurrent encodings of
        # long prompts come out untruncated (measured: 104 tokens for a 77-token encoder)
        for thread, relay in threads:
            thread.start()
            while not (relay.started.wait(POLL_S) or relay.finished.is_set()):
                continue
        yield stores
    finally:
        for _, relay in threads:
            relay.closed.set()
        for thread, _ in threads:
            if thread.ident is not None:  # started
                thread.join()
