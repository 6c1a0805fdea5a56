"""The identity store: a character's banked CSA tokens, kept off the accelerator.

A store is a cache derived from an :class:`IdentitySpec`: written once by the lock pass,
saved as safetensors (only the sampled tokens; float8 by default, float16 exact) under a
key hashed from the spec, loaded by any later render in any process, and rebuilt from
the spec when missing. Tokens live in CPU memory between steps; a read pass moves one
step's worth to the device at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

FORMAT_VERSION = 1
STORE_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    # the default: measured below the seed noise of token sampling (benchmarks/memory.py)
    "float8": torch.float8_e4m3fn,
}


def _host(tensor: torch.Tensor) -> torch.Tensor:
    """Keep banked tokens in pinned host memory when a GPU is present, so per-step copies
    to the device can run asynchronously; plain CPU memory otherwise."""
    return tensor.pin_memory() if torch.cuda.is_available() else tensor


_KEEP = object()
# fields added after stores were first saved, with the value that leaves a key unchanged
_KEYLESS_DEFAULTS: dict[str, object] = {
    "csa_schedule": "every-step",
    "reference": "",
    "identity_mode": "csa",
    "adapter": "",
}


class StoreMismatchError(ValueError):
    """A store cannot serve this read pass (other steps, size, scheduler or model)."""


@dataclass(frozen=True)
class IdentitySpec:
    """Everything that determines a character's look; its hash names the store."""

    name: str
    description: str
    style: str
    seed: int
    identity_prompts: tuple[str, ...]
    model: str
    width: int
    height: int
    steps: int
    scheduler: str
    guidance: float
    rate: float
    store_dtype: str = "float16"
    bank_fraction: float = 1.0
    # when the write pass uses consistent attention (see csa_schedule); it changes the
    # banked tokens, so it is part of the look
    csa_schedule: str = "every-step"
    # a reference picture (its sha256 file name), the identity mode and the image adapter;
    # at their defaults they are left out of the key, so older stores keep their names
    reference: str = ""
    identity_mode: str = "csa"
    adapter: str = ""

    @property
    def images(self) -> int:
        """K, the number of identity panels denoised together."""
        return len(self.identity_prompts)

    @property
    def banked_steps(self) -> int:
        """Steps whose tokens are banked (all, unless a compact mode is chosen)."""
        return max(1, round(self.steps * self.bank_fraction))

    def key(self) -> str:
        """Stable hash of the spec: the store's file name. Fields added later are left out at
        their defaults (every-step schedule, no picture), so older stores keep their names."""
        fields = {
            name: value
            for name, value in asdict(self).items()
            if _KEYLESS_DEFAULTS.get(name, _KEEP) != value
        }
        canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> IdentitySpec:
        data = json.loads(text)
        data["identity_prompts"] = tuple(data["identity_prompts"])
        return cls(**data)


def store_metadata(
    spec: IdentitySpec, layer_names: tuple[str, ...], timesteps: list[float]
) -> dict[str, str]:
    """The safetensors metadata that makes a file a store of ``spec``."""
    return {
        "format": str(FORMAT_VERSION),
        "spec": spec.to_json(),
        "layers": json.dumps(list(layer_names)),
        "timesteps": json.dumps(timesteps),
    }


class IdentityStore:
    """Banked tokens of one character: per step, per CSA layer, (copies, K, n, C)."""

    def __init__(
        self,
        spec: IdentitySpec,
        layer_names: tuple[str, ...],
        timesteps: list[float],
        tokens: dict[int, list[torch.Tensor]],
    ):
        self.spec = spec
        self.layer_names = layer_names
        self.timesteps = timesteps
        self.tokens = tokens

    @property
    def key(self) -> str:
        return self.spec.key()

    @property
    def nbytes(self) -> int:
        """Bytes of all banked tokens."""
        return sum(t.numel() * t.element_size() for layers in self.tokens.values() for t in layers)

    def step_tokens(self, step: int) -> list[torch.Tensor] | None:
        """The tokens of every layer at ``step``, or None where the step was not banked."""
        return self.tokens.get(step)

    def has_step(self, step: int) -> bool:
        """Whether ``step`` was banked (a compact store may leave steps out)."""
        return step in self.tokens

    def layer_tokens(self, step: int, layer: int) -> torch.Tensor:
        """One layer's tokens at a banked ``step``: a read pass asks for each layer only when
        that layer runs, so a store that is not in RAM need not bring in a whole step."""
        return self.tokens[step][layer]

    def release(self) -> None:
        """The read pass is over: drop whatever this store brought in for it."""

    def check_compatible(
        self,
        *,
        model: str,
        steps: int,
        width: int,
        height: int,
        scheduler: str,
        csa_schedule: str | None = None,
    ) -> None:
        """Raise a clear StoreMismatchError unless a read pass with these settings can use it."""
        spec = self.spec
        if csa_schedule is not None and spec.csa_schedule != csa_schedule:
            raise StoreMismatchError(
                f"the look of {spec.name} was locked on the {spec.csa_schedule} CSA schedule, "
                f"but this render uses {csa_schedule}; lock the character again"
            )
        theirs = f"{spec.steps} steps at {spec.width}×{spec.height} with {spec.scheduler}"
        ours = f"{steps} steps at {width}×{height} with {scheduler}"
        if (spec.steps, spec.width, spec.height, spec.scheduler) != (
            steps,
            width,
            height,
            scheduler,
        ):
            raise StoreMismatchError(
                f"the look of {spec.name} was locked for {theirs}, but this render uses {ours}; "
                "lock the character again with the render's settings"
            )
        if spec.model != model:
            raise StoreMismatchError(
                f"the look of {spec.name} was locked with model {spec.model}, not {model}"
            )

    def check_step(self, step: int, timestep: float) -> None:
        """Raise StoreMismatchError if the read pass is past the store or off its schedule."""
        if step >= len(self.timesteps):
            raise StoreMismatchError(
                f"the look of {self.spec.name} has {len(self.timesteps)} steps; "
                f"this render asked for step {step + 1}"
            )
        if abs(self.timesteps[step] - timestep) > 1e-3:
            raise StoreMismatchError(
                f"the look of {self.spec.name} was locked on another noise schedule "
                f"(step {step + 1}: timestep {self.timesteps[step]:g}, not {timestep:g})"
            )

    # -- persistence ------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        """Write ``<key>.safetensors`` atomically (temp file, then rename) and return it."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.key}.safetensors"
        tensors = {
            f"s{step}.l{layer}": t.contiguous()
            for step, layers in self.tokens.items()
            for layer, t in enumerate(layers)
        }
        metadata = store_metadata(self.spec, self.layer_names, self.timesteps)
        fd, tmp = tempfile.mkstemp(prefix=".store-", suffix=".tmp", dir=directory)
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=metadata)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @classmethod
    def load(cls, path: Path) -> IdentityStore:
        """Read a saved store into CPU memory."""
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            if meta.get("format") != str(FORMAT_VERSION):
                raise StoreMismatchError(f"{path.name} is not a storyloom identity store")
            spec = IdentitySpec.from_json(meta["spec"])
            layer_names = tuple(json.loads(meta["layers"]))
            tokens: dict[int, list[torch.Tensor]] = {}
            for name in f.keys():  # noqa: SIM118 - safe_open has no __iter__
                step, layer = (int(part[1:]) for part in name.split("."))
                layers = tokens.setdefault(step, [torch.empty(0)] * len(layer_names))
                layers[layer] = _host(f.get_tensor(name))
        return cls(spec, layer_names, json.loads(meta["timesteps"]), tokens)


Relay = Callable[[int, float, "list[Any] | None"], None]
# where a relayed layer waits for the read pass: (step, layer, tokens) -> what the relay carries
Spill = Callable[[int, int, torch.Tensor], Any]


class StoreWriter:
    """Collects the tokens a write pass samples, step by step, into CPU memory; or, with a
    ``relay``, hands each finished step on and keeps nothing (the recompute policy). With
    ``spill`` too, each layer goes to ``spill`` as soon as it is banked, and the relay
    carries what ``spill`` returned for each layer (the step is never whole in memory)."""

    def __init__(
        self,
        spec: IdentitySpec,
        layer_names: tuple[str, ...],
        relay: Relay | None = None,
        spill: Spill | None = None,
    ):
        self.spec = spec
        self.layer_names = layer_names
        self.dtype = STORE_DTYPES[spec.store_dtype]
        self.relay = relay
        self.spill = spill
        self.timesteps: list[float] = []
        self.tokens: dict[int, list[torch.Tensor]] = {}
        self._pending: list[Any] = [None] * len(layer_names)
        self._step = -1
        self._repeat = False

    def begin_step(self, step: int, timestep: float) -> None:
        """The first UNet call of a step: its tokens are banked (the step's timestep kept)."""
        if step >= self.spec.steps:
            raise StoreMismatchError(
                f"the scheduler ran more than the {self.spec.steps} steps asked for"
            )
        self._step = step
        self._repeat = False
        self.timesteps.append(timestep)
        if self.relay is not None and step >= self.spec.banked_steps:
            self.relay(step, timestep, None)

    def repeat_step(self) -> None:
        """A second UNet call of the same step (second-order schedulers): bank nothing."""
        self._repeat = True

    def record(self, layer: int, sampled: torch.Tensor) -> None:
        """Bank one layer's sampled tokens for the current step (if the step is banked)."""
        if self._repeat or self._step >= self.spec.banked_steps:
            return
        tokens = sampled.detach().to(device="cpu", dtype=self.dtype)
        if self.relay is None:
            layers = self.tokens.setdefault(self._step, [torch.empty(0)] * len(self.layer_names))
            layers[layer] = _host(tokens)
            return
        self._pending[layer] = (
            _host(tokens) if self.spill is None else self.spill(self._step, layer, tokens)
        )
        if all(t is not None for t in self._pending):
            done = list(self._pending)
            self._pending = [None] * len(self.layer_names)
            self.relay(self._step, self.timesteps[-1], done)

    def finish(self) -> IdentityStore:
        """The finished store; every step ran and every banked step holds every layer."""
        if len(self.timesteps) != self.spec.steps:
            raise RuntimeError(
                f"the write pass ran {len(self.timesteps)} steps, not {self.spec.steps}"
            )
        for step, layers in self.tokens.items():
            if any(t.numel() == 0 for t in layers):
                raise RuntimeError(f"CSA layers were skipped at step {step}: store incomplete")
        return IdentityStore(self.spec, self.layer_names, self.timesteps, self.tokens)
