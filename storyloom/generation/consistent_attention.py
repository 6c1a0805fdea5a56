"""Consistent Self-Attention (CSA) for diffusers UNets, with all state on one object.

Write (lock a character): the K identity images of one character are denoised as one
batch. At each step and CSA layer every identity image contributes one random subset of
its tokens (each token kept with probability ``rate``, drawn as a fixed-size uniform
subset so shapes stay static); each image attends to ``[the subsets of the other
images, its own tokens]``, and the subsets are banked in the identity store.

Read (any later panel): a panel attends to ``[banked tokens of every character it shows,
its own tokens]`` at the same layer and step; the banked tokens' key/value projections
are computed once per layer and step for the whole batch. Panels with no character use
the layer's original processor, so their math is the stock pipeline's.

Layers: ``attn1`` of the up-blocks that carry attention, except the last (full latent
resolution) one. SDXL: up_blocks.0 (30 layers, 1/32 of the image, 1280 channels) and
up_blocks.1 (6 layers, 1/16, 640). SD1.5: up_blocks.1 and .2 (3 + 3 layers at 1/32 and
1/16; up_blocks.3 at 1/8 is skipped: it is the costliest (4096 tokens at 512²) and
carries fine texture rather than identity).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from storyloom.generation.accounting import sampled_count
from storyloom.generation.csa_schedule import SkipSchedule
from storyloom.generation.identity_store import IdentityStore, StoreWriter
from storyloom.generation.steps import starts_step

Mode = Literal["write", "read"]


class CSALayerError(RuntimeError):
    """The UNet has no layers that Consistent Self-Attention can use."""


def select_csa_layers(unet: nn.Module) -> list[str]:
    """Processor names of the CSA layers (see module docstring); raise if none match."""
    up_blocks = list(getattr(unet, "up_blocks", []))
    with_attention = [i for i, block in enumerate(up_blocks) if hasattr(block, "attentions")]
    chosen = [i for i in with_attention if i < len(up_blocks) - 1]
    processors: dict[str, Any] = getattr(unet, "attn_processors", {})
    names = [
        name
        for name in processors
        if name.endswith("attn1.processor")
        and any(name.startswith(f"up_blocks.{i}.") for i in chosen)
    ]
    if not names:
        raise CSALayerError("no self-attention layers in the UNet's up-blocks to make consistent")
    return names


def sample_token_indices(
    images: int, tokens: int, rate: float, generator: torch.Generator
) -> torch.Tensor:
    """One uniform random subset of ``round(rate * tokens)`` token indices per image."""
    scores = torch.rand((images, tokens), generator=generator, device=generator.device)
    return scores.argsort(dim=1)[:, : sampled_count(tokens, rate)]


@dataclass(eq=False)
class CSAState:
    """Everything one CSA pipeline call needs; one object per call, never shared."""

    mode: Mode
    layer_names: tuple[str, ...]
    panels: int
    rate: float = 0.5
    generator: torch.Generator | None = None
    writer: StoreWriter | None = None
    # read mode: the stores, and for each panel the indices of the stores it shows
    stores: Sequence[IdentityStore] = ()
    panel_stores: Sequence[tuple[int, ...]] = ()
    # set when the processors are installed for the read pass and its write passes at once
    # (the recompute policy: each UNet call is routed to its pass's state)
    routes: CSARoutes | None = None
    # the reference schedule's skips (one unit in write mode, one per panel in read mode);
    # None: consistent attention at every layer call of every step
    schedule: SkipSchedule | None = None
    step: int = -1
    unet_calls: int = 0
    last_timestep: float | None = None
    # read mode: the most stored-token bytes brought in at once (one layer of every store)
    device_bytes_peak: int = 0
    # read mode: layer calls that attended to stored tokens, and those that found none
    stored_reads: int = 0
    missed_reads: int = 0
    # read mode: the stores that banked the current step (a compact store may skip steps)
    _banked: set[int] = field(default_factory=set)
    _kv_cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict
    )
    _groups: list[tuple[tuple[int, ...], list[int]]] = field(default_factory=list)
    _kv_layer: int = -1
    _layer_bytes: int = 0  # stored tokens brought in for the current layer
    _dtype: torch.dtype = torch.float32
    _device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        if self.mode == "write" and (self.generator is None or self.writer is None):
            raise ValueError("write mode needs a generator and a store writer")
        if self.mode == "read" and len(self.panel_stores) != self.panels:
            raise ValueError("read mode needs the stores of every panel")
        units = 1 if self.mode == "write" else self.panels
        if self.schedule is not None and len(self.schedule.generators) != units:
            raise ValueError(f"the schedule has {len(self.schedule.generators)} units, not {units}")
        self._groups = self.groups(self.panel_stores)

    @staticmethod
    def groups(panel_stores: Sequence[tuple[int, ...]]) -> list[tuple[tuple[int, ...], list[int]]]:
        """Panels grouped by the set of stores they read."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for panel, shown in enumerate(panel_stores):
            groups.setdefault(tuple(sorted(set(shown))), []).append(panel)
        return list(groups.items())

    def skips(self) -> list[bool] | None:
        """For the layer call about to run: which units use plain attention (None: none)."""
        if self.schedule is None:
            return None
        return self.schedule.skips(self.step)

    # -- step bookkeeping, driven by a forward pre-hook on the UNet --------------------
    def begin_call(
        self, timestep: float, device: torch.device, dtype: torch.dtype, new_step: bool = True
    ) -> None:
        """Before a UNet call: advance to the next step, or stay on this one for the second
        call of a second-order step (same tokens, same cached keys/values)."""
        self.unet_calls += 1
        self.last_timestep = timestep
        if new_step or self.step < 0:
            self.begin_step(timestep, device, dtype)
        elif self.mode == "write":
            assert self.writer is not None
            self.writer.repeat_step()

    def begin_step(self, timestep: float, device: torch.device, dtype: torch.dtype) -> None:
        """Advance to the next denoising step; check every shown store can serve it. Tokens
        are brought in one layer at a time, when that layer runs (see ``stored_kv``)."""
        self.step += 1
        self._kv_cache.clear()
        self._banked.clear()
        self._dtype = dtype
        self._device = device
        if self.mode == "write":
            assert self.writer is not None
            self.writer.begin_step(self.step, timestep)
            return
        for index in sorted({s for shown in self.panel_stores for s in shown}):
            store = self.stores[index]
            store.check_step(self.step, timestep)
            if store.has_step(self.step):  # a compact store may not have banked this step
                self._banked.add(index)

    def end_call(self) -> None:
        """After a UNet call: drop the last layer's keys/values, so nothing of the identities
        is held between calls (the next call projects its layers again)."""
        self._kv_cache.clear()
        self._kv_layer = -1

    def end_pass(self) -> None:
        """The denoising loop is over: let go of everything the stores brought in, so the
        VAE decode (a plain page's peak memory) runs with no identity data resident."""
        self.end_call()
        self._banked.clear()
        for store in self.stores:
            store.release()

    def stored_kv(
        self, store_index: int, layer: int, attn: Any
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Key/value of one store's tokens at this layer and step, split into heads:
        (copies, heads, K*n, head_dim). The layer's tokens are brought in (read from disk,
        moved to the device) now and dropped once projected; the projections are kept for
        the other groups of the batch that show this store, until ``drop_kv``."""
        if self._kv_layer != layer:  # keep one layer's projections, not the whole step's
            self._kv_cache.clear()
            self._kv_layer = layer
            self._layer_bytes = 0
        cached = self._kv_cache.get((store_index, layer))
        if cached is not None:
            return cached
        if store_index not in self._banked:
            return None
        stored = self.stores[store_index].layer_tokens(self.step, layer)
        self._layer_bytes += stored.numel() * stored.element_size()
        self.device_bytes_peak = max(self.device_bytes_peak, self._layer_bytes)
        # stored precision to the device, widened to the compute dtype there
        tokens = stored.to(device=self._device, non_blocking=True).to(self._dtype)
        del stored
        tokens = tokens.reshape(tokens.shape[0], -1, tokens.shape[-1])  # (copies, K*n, C)
        key = _heads(attn.to_k(tokens), attn.heads)
        if attn.norm_k is not None:  # QK-norm, as the stock processor applies it
            key = attn.norm_k(key)
        kv = (key, _heads(attn.to_v(tokens), attn.heads))
        self._kv_cache[(store_index, layer)] = kv
        return kv

    def drop_kv(self, store_index: int, layer: int) -> None:
        """The last group of the layer's call that reads this store has its keys and values
        laid out: let the store's projections go."""
        self._kv_cache.pop((store_index, layer), None)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    batch, length, inner = x.shape
    return x.view(batch, length, heads, inner // heads).transpose(1, 2)


class ConsistentAttnProcessor:
    """A diffusers attention processor for one ``attn1`` layer, shaped like AttnProcessor2_0."""

    def __init__(self, state: CSAState, layer: int, fallback: Callable[..., torch.Tensor]):
        self.state = state
        self.layer = layer
        self.fallback = fallback

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        state = self.state
        plain = (
            encoder_hidden_states is not None
            or attention_mask is not None
            or hidden_states.ndim != 3
            or attn.spatial_norm is not None
            or attn.group_norm is not None
            or (state.mode == "read" and all(not shown for shown in state.panel_stores))
        )
        if plain:
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        batch = hidden_states.shape[0]
        if batch % state.panels:
            raise ValueError(f"batch of {batch} is not a multiple of {state.panels} panels")

        # 1. projections of the batch's own tokens, exactly as the stock processor does
        residual = hidden_states
        query = _heads(attn.to_q(hidden_states), attn.heads)
        if attn.norm_q is not None:  # QK-norm, where the layer has it (as stock does)
            query = attn.norm_q(query)
        if state.mode == "write":
            hidden_states = self._write(attn, hidden_states, query)
        else:
            key = _heads(attn.to_k(hidden_states), attn.heads)
            if attn.norm_k is not None:
                key = attn.norm_k(key)
            value = _heads(attn.to_v(hidden_states), attn.heads)
            hidden_states = self._read(attn, query, key, value)

        # 2. output projection and the block's residual options
        hidden_states = attn.to_out[0](hidden_states.to(query.dtype))
        hidden_states = attn.to_out[1](hidden_states)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor

    def _write(self, attn: Any, hidden_states: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        state = self.state
        assert state.generator is not None and state.writer is not None
        images = state.panels
        copies = hidden_states.shape[0] // images
        _, tokens, channels = hidden_states.shape
        grid = hidden_states.view(copies, images, tokens, channels)

        # 1. one token subset per identity image, shared by its CFG copies; bank it
        index = sample_token_indices(images, tokens, state.rate, state.generator)
        index = index.to(hidden_states.device)
        picked = index.shape[1]
        sampled = grid.gather(2, index[None, :, :, None].expand(copies, images, picked, channels))
        state.writer.record(self.layer, sampled)

        # 2. each image attends to [the other images' subsets, its own tokens], or, where
        # the schedule skips this call, to its own tokens only (the subsets are banked still)
        skips = state.skips()
        if images > 1 and not (skips and skips[0]):
            others = torch.stack(
                [
                    torch.cat([sampled[:, j] for j in range(images) if j != i], dim=1)
                    for i in range(images)
                ],
                dim=1,
            ).reshape(copies * images, (images - 1) * picked, channels)
            context = torch.cat([others, hidden_states], dim=1)
        else:
            context = hidden_states
        key = _heads(attn.to_k(context), attn.heads)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        value = _heads(attn.to_v(context), attn.heads)
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
        return out.transpose(1, 2).reshape(hidden_states.shape[0], tokens, -1)

    def _read(
        self, attn: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor
    ) -> torch.Tensor:
        state = self.state
        panels = state.panels
        copies = query.shape[0] // panels
        out: torch.Tensor | None = None
        groups = state._groups
        skips = state.skips()
        if skips is not None and any(skips):  # skipped panels attend to their own tokens only
            groups = state.groups(
                [
                    () if skip else shown
                    for skip, shown in zip(skips, state.panel_stores, strict=True)
                ]
            )
        # the last group of this call that shows each store: once that group's keys and
        # values are laid out, the store's projections are let go, so the stores of one
        # group are held at a time, not every store of the layer
        last_group = {store: i for i, (shown, _) in enumerate(groups) for store in shown}
        for i, (shown, group) in enumerate(groups):
            rows = [copy * panels + p for copy in range(copies) for p in group]
            select = torch.tensor(rows, device=query.device)
            whole = len(rows) == query.shape[0]
            q = query if whole else query.index_select(0, select)
            k = key if whole else key.index_select(0, select)
            v = value if whole else value.index_select(0, select)
            context = self._stored_context(attn, shown, k, v, copies, len(group))
            for store in shown:
                if last_group[store] == i:
                    state.drop_kv(store, self.layer)
            if context is not None:
                k, v = context
            result = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=False)
            if whole:
                out = result
            else:
                if out is None:
                    out = torch.empty_like(query)
                out.index_copy_(0, select, result)
        assert out is not None
        batch, heads, tokens, head_dim = out.shape
        return out.transpose(1, 2).reshape(batch, tokens, heads * head_dim)

    def _stored_context(
        self,
        attn: Any,
        shown: tuple[int, ...],
        own_key: torch.Tensor,
        own_value: torch.Tensor,
        copies: int,
        group_size: int,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The group's keys and values: [banked tokens of the shown characters, its own
        tokens], each laid out once in its own buffer (rows as the group's, copy by copy);
        None where no shown store banked this step."""
        stored = []
        for store_index in shown:
            kv = self.state.stored_kv(store_index, self.layer, attn)
            if kv is not None:
                stored.append(kv)  # (store copies, heads, L, head_dim)
        if not stored:
            self.state.missed_reads += bool(shown)
            return None
        self.state.stored_reads += 1
        rows, heads, tokens, head_dim = own_key.shape
        length = sum(k.shape[2] for k, _ in stored) + tokens
        shape = (copies, group_size, heads, length, head_dim)
        keys = own_key.new_empty(shape)
        values = own_value.new_empty(shape)
        start = 0
        for k, v in stored:
            end = start + k.shape[2]
            # every panel of the group reads the same banked copy: broadcast, not copied
            keys[:, :, :, start:end] = _copy_of(k, copies)[:, None]
            values[:, :, :, start:end] = _copy_of(v, copies)[:, None]
            start = end
        keys = keys.view(rows, heads, length, head_dim)
        values = values.view(rows, heads, length, head_dim)
        keys[:, :, start:] = own_key
        values[:, :, start:] = own_value
        return keys, values


def _copy_of(stored: torch.Tensor, wanted: int) -> torch.Tensor:
    """The banked CFG copies each batch copy reads: the same copy, else the conditional one
    (the last), broadcast over the batch's copies."""
    return stored if stored.shape[0] == wanted else stored[-1:]


class CSARoutes:
    """Which CSA state (and scheduler) serves the UNet calls made now by each thread.

    The read pass binds its state for its pipeline call. With the recompute policy, the
    shown characters' write passes run beside it on the same thread and UNet (in greenlets,
    see `recompute`), and each write pass's UNet call binds its own state for the call and
    puts the read pass's back after it. Threads that bound nothing get plain attention.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def bind(self, state: CSAState, scheduler: Any | None) -> None:
        """Serve this thread's UNet calls with ``state`` (steps keyed by ``scheduler``)."""
        self._local.route = (state, scheduler)

    def current(self) -> tuple[CSAState, Any | None] | None:
        return getattr(self._local, "route", None)

    def restore(self, route: tuple[CSAState, Any | None] | None) -> None:
        """Put back what ``current()`` returned before a call served for another thread."""
        self._local.route = route


class RoutedProcessor:
    """One CSA layer's processor for every thread: the calling thread's state, or the
    layer's original processor for threads without one."""

    def __init__(self, routes: CSARoutes, layer: int, fallback: Callable[..., torch.Tensor]):
        self.routes = routes
        self.layer = layer
        self.fallback = fallback

    def __call__(self, attn: Any, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        route = self.routes.current()
        if route is None:
            return self.fallback(attn, hidden_states, *args, **kwargs)
        processor = ConsistentAttnProcessor(route[0], self.layer, self.fallback)
        return processor(attn, hidden_states, *args, **kwargs)


@contextmanager
def routed_attention(
    unet: nn.Module, routes: CSARoutes, layer_names: Sequence[str]
) -> Iterator[CSARoutes]:
    """Install routed CSA processors on ``layer_names``; always restore the originals.
    UNet calls are keyed by the bound scheduler's denoising step (see ``steps``)."""
    original: dict[str, Any] = dict(unet.attn_processors)  # type: ignore[arg-type]
    layer_of = {name: i for i, name in enumerate(layer_names)}
    missing = set(layer_of) - set(original)
    if missing:
        raise CSALayerError(f"the UNet has no layer named {sorted(missing)[0]}")
    # set_attn_processor empties the dict it is given: always pass a fresh one
    installed = {
        name: RoutedProcessor(routes, layer_of[name], proc) if name in layer_of else proc
        for name, proc in original.items()
    }

    def on_unet_call(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        route = routes.current()
        if route is None:
            return
        state, scheduler = route
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        t = float(timestep.flatten()[0]) if torch.is_tensor(timestep) else float(timestep)
        new_step = starts_step(scheduler, t, state.last_timestep)
        state.begin_call(t, sample.device, sample.dtype, new_step)

    def after_unet_call(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        route = routes.current()
        if route is not None:
            route[0].end_call()

    unet.set_attn_processor(installed)  # type: ignore[operator]
    hook = unet.register_forward_pre_hook(on_unet_call, with_kwargs=True)
    after = unet.register_forward_hook(after_unet_call)
    try:
        yield routes
    finally:
        hook.remove()
        after.remove()
        unet.set_attn_processor(dict(original))  # type: ignore[operator]


@contextmanager
def consistent_attention(
    unet: nn.Module, state: CSAState, scheduler: Any | None = None
) -> Iterator[CSAState]:
    """Install CSA processors on ``state.layer_names`` for one call in this thread; always
    restore them. With the pipeline's ``scheduler``, UNet calls are keyed by its denoising
    step (see ``steps``); without it, every call is a step."""
    routes = CSARoutes()
    routes.bind(state, scheduler)
    with routed_attention(unet, routes, state.layer_names):
        yield state
