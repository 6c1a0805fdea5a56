"""Identity stores on disk: streamed one step at a time, kept under an LRU byte budget.

A saved store is a safetensors file with one tensor per (step, layer). `StreamedStore`
reads one layer's tensor of a step from it when the read pass runs that layer, so only
that layer is resident (the read pass drops it once the layer's keys and values are
projected). `StoreShelf` keeps
the folder under a byte budget: the least recently used stores are deleted first; an
evicted store is rebuilt from its spec (deterministic) when a render needs it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from storyloom.generation.identity_store import (
    FORMAT_VERSION,
    IdentitySpec,
    IdentityStore,
    StoreMismatchError,
    store_metadata,
)

SUFFIX = ".safetensors"


# safetensors dtype names of the dtypes a store is saved in
_DTYPES = {
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,
    "F32": torch.float32,
}


class StreamedStore(IdentityStore):
    """A saved store read step by step from its file (nothing loaded up front).

    The file is in safetensors layout (an 8-byte header length, a JSON header, then the
    tensors' bytes); each step's tensors are read with positioned reads when the read pass
    reaches that step. A memory mapping would keep every page it touched in the process's
    resident memory until the kernel needs it back, so a render would end up holding the
    whole store after all.
    """

    def __init__(self, path: Path):
        # the open descriptor keeps the bytes readable even if the shelf deletes the file
        self._fd = os.open(path, os.O_RDONLY)
        try:
            length = int.from_bytes(os.pread(self._fd, 8, 0), "little")
            header = json.loads(os.pread(self._fd, length, 8))
        except (OSError, ValueError) as error:
            os.close(self._fd)
            raise StoreMismatchError(f"{path.name} is not a storyloom identity store") from error
        meta = header.pop("__metadata__", {})
        if meta.get("format") != str(FORMAT_VERSION):
            os.close(self._fd)
            raise StoreMismatchError(f"{path.name} is not a storyloom identity store")
        super().__init__(
            IdentitySpec.from_json(meta["spec"]),
            tuple(json.loads(meta["layers"])),
            json.loads(meta["timesteps"]),
            {},
        )
        self.path = path
        self._data_start = 8 + length
        self._entries: dict[str, Any] = header
        self._steps = {int(name.split(".")[0][1:]) for name in header}
        self._bytes = path.stat().st_size

    def __del__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.close(self._fd)

    @property
    def nbytes(self) -> int:
        """Bytes of the file (tokens and a small header); never all resident."""
        return self._bytes

    def _read(self, name: str) -> torch.Tensor:
        entry = self._entries[name]
        start, end = entry["data_offsets"]
        data = bytearray(end - start)
        if os.preadv(self._fd, [data], self._data_start + start) != len(data):
            raise StoreMismatchError(f"{self.path.name} is truncated")
        return torch.frombuffer(data, dtype=_DTYPES[entry["dtype"]]).reshape(entry["shape"])

    def step_tokens(self, step: int) -> list[torch.Tensor] | None:
        """This step's tokens of every layer, read from the file now."""
        if step not in self._steps:
            return None
        return [self._read(f"s{step}.l{i}") for i in range(len(self.layer_names))]

    def has_step(self, step: int) -> bool:
        return step in self._steps

    def layer_tokens(self, step: int, layer: int) -> torch.Tensor:
        """One layer's tokens at ``step``, read from the file now (the caller drops them
        after the layer ran, so one layer of the store is resident, not a step)."""
        return self._read(f"s{step}.l{layer}")


_DTYPE_NAMES = {dtype: name for name, dtype in _DTYPES.items()}


class StoreSpool:
    """Writes a store to disk step by step as its lock pass banks it, so a store larger
    than the RAM budget is never whole in memory. The file is in safetensors layout."""

    def __init__(self, directory: Path, spec: IdentitySpec, layer_names: tuple[str, ...]):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.spec = spec
        self.layer_names = layer_names
        fd, name = tempfile.mkstemp(prefix=".spool-", suffix=".tmp", dir=directory)
        self._data = os.fdopen(fd, "wb")
        self._data_path = Path(name)
        self._entries: dict[str, Any] = {}
        self._offset = 0

    def add(self, step: int, timestep: float, tokens: list[torch.Tensor] | None) -> None:
        """Append one finished step (the writer's relay); unbanked steps bring nothing."""
        for layer, tensor in enumerate(tokens or ()):
            raw = tensor.contiguous().view(torch.uint8).numpy().tobytes()
            self._data.write(raw)
            end = self._offset + len(raw)
            self._entries[f"s{step}.l{layer}"] = {
                "dtype": _DTYPE_NAMES[tensor.dtype],
                "shape": list(tensor.shape),
                "data_offsets": [self._offset, end],
            }
            self._offset = end

    def finish(self, timesteps: list[float]) -> Path:
        """Write ``<key>.safetensors`` (header, then the spooled bytes) and return it."""
        self._data.close()
        meta = store_metadata(self.spec, self.layer_names, timesteps)
        header = json.dumps({"__metadata__": meta, **self._entries}).encode()
        header += b" " * (-len(header) % 8)  # tensors start 8-byte aligned, as safetensors does
        path = self.directory / f"{self.spec.key()}{SUFFIX}"
        fd, tmp = tempfile.mkstemp(prefix=".store-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as out, open(self._data_path, "rb") as data:
                out.write(len(header).to_bytes(8, "little") + header)
                shutil.copyfileobj(data, out, 16 * 1024 * 1024)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
            self._data_path.unlink(missing_ok=True)
        return path

    def discard(self) -> None:
        """Drop what was spooled (the lock pass failed or was cancelled)."""
        self._data.close()
        self._data_path.unlink(missing_ok=True)


class StoreShelf:
    """A folder of stores kept under ``budget_bytes``, least recently used evicted first."""

    def __init__(self, directory: Path, budget_bytes: int | None = None):
        self.directory = directory
        self.budget_bytes = budget_bytes
        self.evicted = 0  # stores deleted for the budget, over this shelf's life

    def path(self, key: str) -> Path:
        return self.directory / f"{key}{SUFFIX}"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def touch(self, key: str) -> None:
        """Mark a store as just used (its modification time orders the evictions)."""
        # evicted by another process meanwhile: it will be rebuilt when needed
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.path(key))

    def put(self, store: IdentityStore) -> Path | None:
        """Save a store, then evict the least recently used others past the budget. A store
        larger than the whole budget is not kept (None): it is rebuilt when needed."""
        if self.budget_bytes is not None and store.nbytes > self.budget_bytes:
            self.shrink(self.budget_bytes)
            return None
        path = store.save(self.directory)
        self.shrink(self.budget_bytes, keep=path)
        return path

    def stores(self) -> list[tuple[float, int, Path]]:
        """(last use, bytes, path) of every store, oldest use first."""
        found = []
        for path in self.directory.glob(f"*{SUFFIX}"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            found.append((stat.st_mtime, stat.st_size, path))
        return sorted(found)

    def used_bytes(self) -> int:
        return sum(size for _, size, _ in self.stores())

    def shrink(self, budget: int | None, keep: Path | None = None) -> None:
        """Delete the least recently used stores until the folder is within ``budget``."""
        if budget is None or not self.directory.is_dir():
            return
        found = self.stores()
        used = sum(size for _, size, _ in found)
        for _, size, path in found:
            if used <= budget:
                break
            if path == keep:
                continue
            path.unlink(missing_ok=True)
            used -= size
            self.evicted += 1
