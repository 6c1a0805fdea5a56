"""The CSA processor against a plain reference computation of the method."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from storyloom.generation.accounting import sampled_count
from storyloom.generation.consistent_attention import (
    ConsistentAttnProcessor,
    CSAState,
)
from storyloom.generation.identity_store import IdentitySpec, IdentityStore, StoreWriter

TOKENS, CHANNELS, HEADS = 24, 16, 2


def make_attention() -> Attention:
    torch.manual_seed(0)
    return Attention(query_dim=CHANNELS, heads=HEADS, dim_head=CHANNELS // HEADS).eval()


def spec(images: int, name: str = "Mira") -> IdentitySpec:
    return IdentitySpec(
        name=name,
        description="a girl",
        style="comic",
        seed=1,
        identity_prompts=tuple(f"pose {i}" for i in range(images)),
        model="test",
        width=64,
        height=64,
        steps=1,
        scheduler="test",
        guidance=5.0,
        rate=0.5,
        store_dtype="float16",
    )


def reference_attention(attn: Attention, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """Softmax attention of x over context, written out with explicit heads."""
    d = CHANNELS // HEADS
    q = attn.to_q(x).view(x.shape[0], -1, HEADS, d).transpose(1, 2)
    k = attn.to_k(context).view(x.shape[0], -1, HEADS, d).transpose(1, 2)
    v = attn.to_v(context).view(x.shape[0], -1, HEADS, d).transpose(1, 2)
    weights = torch.softmax(q @ k.transpose(-1, -2) / d**0.5, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(x.shape[0], -1, CHANNELS)
    return attn.to_out[0](out)


@pytest.mark.parametrize("images,copies", [(1, 1), (2, 2), (3, 1), (4, 2)])
def test_write_mode_equals_reference_concat_of_sampled_tokens(images: int, copies: int) -> None:
    attn = make_attention()
    x = torch.randn(copies * images, TOKENS, CHANNELS)
    writer = StoreWriter(spec(images), ("layer",))
    state = CSAState(
        mode="write",
        layer_names=("layer",),
        panels=images,
        rate=0.5,
        generator=torch.Generator().manual_seed(7),
        writer=writer,
    )
    state.begin_step(999.0, x.device, x.dtype)
    with torch.no_grad():
        out = ConsistentAttnProcessor(state, 0, AttnProcessor2_0())(attn, x)

        # the same draw, replayed: one subset of each identity image
        n = sampled_count(TOKENS, 0.5)
        scores = torch.rand((images, TOKENS), generator=torch.Generator().manual_seed(7))
        index = scores.argsort(dim=1)[:, :n]
        grid = x.view(copies, images, TOKENS, CHANNELS)
        expected = torch.empty_like(x)
        for c in range(copies):
            for i in range(images):
                others = [grid[c, j, index[j]] for j in range(images) if j != i]
                own = grid[c, i]
                context = torch.cat([*others, own], dim=0)
                row = c * images + i
                expected[row] = reference_attention(attn, own[None], context[None])[0]
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)

    # the store banks exactly those tokens, in store precision
    banked = writer.finish().tokens[0][0]
    assert banked.shape == (copies, images, n, CHANNELS)
    assert banked.dtype == torch.float16
    for c in range(copies):
        for j in range(images):
            torch.testing.assert_close(banked[c, j].float(), grid[c, j, index[j]].half().float())


def store_of(name: str, tokens: torch.Tensor) -> IdentityStore:
    return IdentityStore(spec(tokens.shape[1], name), ("layer",), [999.0], {0: [tokens.half()]})


@pytest.mark.parametrize("copies", [1, 2])
def test_read_mode_equals_reference_for_mixed_character_sets(copies: int) -> None:
    attn = make_attention()
    # 5 characters; panels show 0, 1, 2, 3 or 4 of them
    stores = [store_of(f"c{i}", torch.randn(copies, 2, 7 + i, CHANNELS)) for i in range(5)]
    shown = [(0,), (), (1, 2), (0, 1, 2, 3), (4,), (0,)]
    panels = len(shown)
    x = torch.randn(copies * panels, TOKENS, CHANNELS)
    state = CSAState(
        mode="read", layer_names=("layer",), panels=panels, stores=stores, panel_stores=shown
    )
    state.begin_step(999.0, x.device, x.dtype)
    with torch.no_grad():
        out = ConsistentAttnProcessor(state, 0, AttnProcessor2_0())(attn, x)
        expected = torch.empty_like(x)
        for c in range(copies):
            for p, characters in enumerate(shown):
                row = c * panels + p
                banked = [
                    stores[s].tokens[0][0][c].float().reshape(-1, CHANNELS) for s in characters
                ]
                context = torch.cat([*banked, x[row]], dim=0)
                expected[row] = reference_attention(attn, x[row][None], context[None])[0]
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_read_without_cfg_uses_the_conditional_copy_of_a_cfg_store() -> None:
    attn = make_attention()
    store = store_of("Mira", torch.randn(2, 2, 9, CHANNELS))
    x = torch.randn(1, TOKENS, CHANNELS)
    state = CSAState(
        mode="read", layer_names=("layer",), panels=1, stores=[store], panel_stores=[(0,)]
    )
    state.begin_step(999.0, x.device, x.dtype)
    with torch.no_grad():
        out = ConsistentAttnProcessor(state, 0, AttnProcessor2_0())(attn, x)
        context = torch.cat([store.tokens[0][0][1].float().reshape(-1, CHANNELS), x[0]])
        expected = reference_attention(attn, x, context[None])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_panels_without_characters_are_exactly_the_stock_processor() -> None:
    attn = make_attention()
    x = torch.randn(4, TOKENS, CHANNELS)
    state = CSAState(mode="read", layer_names=("layer",), panels=2, panel_stores=[(), ()])
    state.begin_step(999.0, x.device, x.dtype)
    with torch.no_grad():
        out = ConsistentAttnProcessor(state, 0, AttnProcessor2_0())(attn, x)
        stock = AttnProcessor2_0()(attn, x)
    assert torch.equal(out, stock)


def test_stored_keys_and_values_are_projected_once_per_layer_call_and_held_per_group() -> None:
    attn = make_attention()
    calls = 0
    original = attn.to_k.forward

    def counting(t: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return original(t)

    attn.to_k.forward = counting  # type: ignore[method-assign]
    stores = [store_of(name, torch.randn(2, 2, 9, CHANNELS)) for name in ("Mira", "Tom", "Ada")]
    # four groups of panels: (Mira) twice, (Mira, Tom), (Tom), (Ada)
    shown = [(0,), (0, 1), (0,), (1,), (2,)]
    x = torch.randn(2 * len(shown), TOKENS, CHANNELS)
    state = CSAState(
        mode="read", layer_names=("layer",), panels=len(shown), stores=stores, panel_stores=shown
    )
    held: list[int] = []
    real_stored_kv = state.stored_kv

    def stored_kv(*args: Any) -> Any:
        kv = real_stored_kv(*args)
        held.append(len(state._kv_cache))
        return kv

    state.stored_kv = stored_kv  # type: ignore[method-assign]
    state.begin_step(999.0, x.device, x.dtype)
    with torch.no_grad():
        ConsistentAttnProcessor(state, 0, AttnProcessor2_0())(attn, x)
    # one projection of the batch's own tokens, one of each store's tokens
    assert calls == 4
    # a store's projections go after the last group that reads it: at most one group's
    # stores are held at once, and nothing once the call is over
    assert max(held) == 2
    assert not state._kv_cache


def qk_norm_attention() -> Attention:
    torch.manual_seed(0)
    attn = Attention(
        query_dim=CHANNELS, heads=HEADS, dim_head=CHANNELS // HEADS, qk_norm="layer_norm"
    ).eval()
    with torch.no_grad():  # non-trivial norms, so leaving them out would show
        for norm in (attn.norm_q, attn.norm_k):
            norm.weight.uniform_(0.5, 2.0)  # type: ignore[union-attr]
            norm.bias.uniform_(-1.0, 1.0)  # type: ignore[union-attr]
    return attn


def test_write_with_one_image_and_qk_norm_is_exactly_the_stock_processor() -> None:
    attn = qk_norm_attention()
    x = torch.randn(2, TOKENS, CHANNELS)
    writer = StoreWriter(spec(1), ("layer",))
    state = CSAState(
        mode="write",
        layer_names=("layer",),
        panels=1,
        generator=torch.Generator().manual_seed(0),
        writer=writer,
    )
    state.begin_step(999.0, x.device, x.dtype)
    with torch.no_grad():
        out = ConsistentAttnProcessor(state, 0, AttnProcessor2_0())(attn, x)
        stock = AttnProcessor2_0()(attn, x)
    assert torch.equal(out, stock)


def test_read_with_qk_norm_normalises_stored_and_own_keys() -> None:
    attn = qk_norm_attention()
    store = store_of("Mira", torch.randn(1, 2, 9, CHANNELS))
    x = torch.randn(1, TOKENS, CHANNELS)
    state = CSAState(
        mode="read", layer_names=("layer",), panels=1, stores=[store], panel_stores=[(0,)]
    )
    state.begin_step(999.0, x.device, x.dtype)
    d = CHANNELS // HEADS
    with torch.no_grad():
        out = ConsistentAttnProcessor(state, 0, AttnProcessor2_0())(attn, x)
        context = torch.cat([store.tokens[0][0][0].float().reshape(-1, CHANNELS), x[0]])[None]
        q = attn.norm_q(attn.to_q(x).view(1, -1, HEADS, d).transpose(1, 2))  # type: ignore[misc]
        k = attn.norm_k(attn.to_k(context).view(1, -1, HEADS, d).transpose(1, 2))  # type: ignore[misc]
        v = attn.to_v(context).view(1, -1, HEADS, d).transpose(1, 2)
        weights = torch.softmax(q @ k.transpose(-1, -2) / d**0.5, dim=-1)
        expected = attn.to_out[0]((weights @ v).transpose(1, 2).reshape(1, -1, CHANNELS))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
