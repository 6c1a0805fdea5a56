"""Identity data within budgets: store sizes, resident identity memory, recompute cost,
disk after churn, and compact store modes measured against the exact store.

Runs the tiny SDXL-shaped pipeline (random weights; a 3-level UNet with transformer
layers (1, 2, 10), so SDXL's 36 CSA layers) on the CPU. Real SDXL's store size comes from
the same accounting code that sizes the stores the renderer writes.

    python benchmarks/memory.py --json out.json
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from storyloom.config import Settings
from storyloom.generation.accounting import sdxl_csa_layers, store_bytes
from storyloom.generation.consistent_attention import consistent_attention
from storyloom.generation.heap import give_back_freed_memory
from storyloom.generation.identity_store import STORE_DTYPES, IdentityStore, StoreWriter
from storyloom.generation.models import load_pipeline
from storyloom.generation.renderer import CharacterSpec, PanelSpec, RenderSettings, StoryRenderer

GiB = 1024**3
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """Resident bytes of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


@contextmanager
def peak_rss(every_s: float = 0.002) -> Iterator[dict[str, int]]:
    """Peak resident bytes over the block, above the resident bytes at its start. Every
    block starts alike: what earlier blocks left in reference cycles (a renderer and its
    stores) is collected and the heap's free pages given back first, not during the block,
    where they would lower its peak."""
    gc.collect()
    give_back_freed_memory()
    result = {"base": rss(), "peak": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            result["peak"] = max(result["peak"], rss())
            time.sleep(every_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result["peak"] = max(result["peak"], rss()) - result["base"]


def cast_of(count: int, salt: str = "") -> dict[str, CharacterSpec]:
    names = ["Mira", "Tom", "Ada", "Ben", "Cleo", "Dan", "Eve", "Finn"][:count]
    return {
        n: CharacterSpec(n, f"{n.lower()} the {salt}traveller, person {i}", seed=100 + i)
        for i, n in enumerate(names)
    }


def page_of(names: list[str]) -> list[PanelSpec]:
    """Panels of two characters each, so every name is shown in one batch."""
    pairs = [tuple(names[i : i + 2]) for i in range(0, len(names), 2)]
    return [
        PanelSpec(i + 1, " and ".join(f"[{n}]" for n in pair) + " talk", pair)
        for i, pair in enumerate(pairs)
    ]


def sdxl_defaults_store() -> int:
    """Real SDXL at the shipped defaults (768², 30 steps, K = 2, CFG, the default store
    dtype: float8), per character."""
    s = Settings(model="stabilityai/stable-diffusion-xl-base-1.0")
    layers = sdxl_csa_layers(s.width, s.height)
    value_bytes = STORE_DTYPES[s.store_dtype].itemsize
    return store_bytes(layers, s.identity_images, s.csa_rate, 2, s.steps, value_bytes)


def widen(loaded: Any, channels: tuple[int, int, int]) -> None:
    """Give the tiny pipeline a wider random UNet of the same SDXL shape, so identity data
    is large enough to measure above the noise of the process's memory."""
    from diffusers import UNet2DConditionModel

    config = {**loaded.pipeline.unet.config, "block_out_channels": channels}
    torch.manual_seed(0)
    loaded.pipeline.unet = UNet2DConditionModel.from_config(config).eval()


def identity_memory(loaded: Any, settings: RenderSettings, folder: Path) -> dict[str, Any]:
    """Peak RSS above a plain page while rendering a page showing 8 characters, and the
    banked tokens held at once (whole stores in RAM, or one step of each character)."""
    cast = cast_of(8)
    page = page_of(list(cast))
    plain = [dataclasses.replace(p, characters=()) for p in page]
    writer = StoryRenderer(loaded, settings, folder, identity_ram_bytes=64 * GiB)
    for c in cast.values():
        writer.lock_character(c, "comic")
    whole, step = writer.store_sizes(writer.identity_spec(cast["Mira"], "comic"))
    del writer
    out: dict[str, Any] = {"store_bytes": whole, "step_bytes": step, "characters": 8}
    budgets = {"store": 64 * GiB, "stream": int(8 * step * 1.1), "recompute": 8 * step - 1}
    plain_renderer = StoryRenderer(loaded, settings, folder)
    plain_renderer.render_panels(plain, cast, style="comic", seed=1)  # warm up
    with peak_rss() as baseline:
        plain_renderer.render_panels(plain, cast, style="comic", seed=1)
    out["plain_page_peak_rss_bytes"] = baseline["peak"]
    for policy, budget in budgets.items():
        renderer = StoryRenderer(loaded, settings, folder, identity_ram_bytes=budget)
        states: list[Any] = []
        real_state = renderer.read_state

        def keep(*args: Any, real: Any = real_state, into: list[Any] = states) -> Any:
            into.append(real(*args))
            return into[-1]

        renderer.read_state = keep  # type: ignore[method-assign]
        with peak_rss() as peak:
            renderer.render_panels(page, cast, style="comic", seed=1)
        assert renderer.last_policy == policy, (policy, renderer.last_policy)
        # the same page again: what a render leaves with the allocator must not raise the next
        with peak_rss() as again:
            renderer.render_panels(page, cast, style="comic", seed=1)
        held = {
            "store": sum(s.nbytes for s in renderer._cache.values()),
            # streamed, or recomputed and spooled: one layer of every store, brought in as
            # the layer runs
            "stream": max(s.device_bytes_peak for s in states),
            "recompute": max(s.device_bytes_peak for s in states),
        }[policy]
        out[policy] = {
            "ram_budget_bytes": budget,
            "peak_rss_above_plain_bytes": max(0, peak["peak"] - baseline["peak"]),
            "second_render_peak_rss_above_plain_bytes": max(0, again["peak"] - baseline["peak"]),
            "banked_tokens_held_bytes": held,
        }
    return out


def recompute_ratio(loaded: Any, settings: RenderSettings, folder: Path) -> dict[str, float]:
    """Time of a read panel (one character) with recompute ÷ with its store in RAM."""
    cast = cast_of(1)
    panel = [PanelSpec(1, "[Mira] reads", ("Mira",))]
    stored = StoryRenderer(loaded, settings, folder, identity_ram_bytes=64 * GiB)
    stored.lock_character(cast["Mira"], "comic")
    recompute = StoryRenderer(loaded, settings, folder, identity_ram_bytes=1)
    times: dict[str, list[float]] = {"store": [], "recompute": []}
    for _ in range(3):  # alternate, so machine noise hits both alike
        for name, renderer in (("store", stored), ("recompute", recompute)):
            t0 = time.perf_counter()
            renderer.render_panels(panel, cast, style="comic", seed=2)
            times[name].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in times.items()}
    return {"store_s": best["store"], "recompute_s": best["recompute"],
            "ratio": best["recompute"] / best["store"]}  # fmt: skip


def churn(loaded: Any, settings: RenderSettings, folder: Path, renders: int) -> dict[str, Any]:
    """Renders with re-rolls and re-casts under a disk budget of about three stores."""
    probe = StoryRenderer(loaded, settings, folder)
    whole, _ = probe.store_sizes(probe.identity_spec(cast_of(1)["Mira"], "comic"))
    budget = int(whole * 3.5)
    renderer = StoryRenderer(loaded, settings, folder, store_disk_bytes=budget)
    cast = cast_of(4)
    over = 0
    for i in range(renders):
        name = list(cast)[i % 4]
        if i % 3 == 0:  # re-roll: a new seed
            cast[name] = dataclasses.replace(cast[name], seed=cast[name].seed + 1000)
        if i % 5 == 0:  # re-cast: a new description
            cast[name] = dataclasses.replace(cast[name], description=f"{name} in outfit {i}")
        shown = [name, list(cast)[(i + 1) % 4]]
        renderer.render_panels(page_of(shown), cast, style="comic", seed=i)
        assert renderer.shelf is not None
        over = max(over, renderer.shelf.used_bytes() - budget)
    assert renderer.shelf is not None
    return {
        "renders": renders,
        "budget_bytes": budget,
        "disk_bytes_after_churn": renderer.shelf.used_bytes(),
        "max_over_budget_bytes": max(0, over),
        "evicted": renderer.shelf.evicted,
    }


def _noop(pipe: Any, call: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    return kwargs


def write_store(renderer: StoryRenderer, character: CharacterSpec, csa_seed: int | None) -> Any:
    """A store written by the lock pass, optionally with another token-sampling seed."""
    spec = renderer.identity_spec(character, "comic")
    writer = StoreWriter(spec, renderer.layer_names)
    state, inputs = renderer.write_inputs(spec, writer)
    if csa_seed is not None:
        state.generator = torch.Generator().manual_seed(csa_seed)
    renderer.pipeline_call(state, _noop, **inputs)
    return writer.finish()


def read_pass(renderer: StoryRenderer, store: IdentityStore) -> tuple[list[list[Any]], Any]:
    """Each CSA layer's attention output at every step, and the final latents."""
    pipe = renderer.pipe
    modules = dict(pipe.unet.named_modules())
    outputs: list[list[Any]] = [[] for _ in renderer.layer_names]
    hooks = []
    for i, name in enumerate(renderer.layer_names):
        module = modules[name.removesuffix(".processor")]
        hook: Callable[..., None] = lambda m, a, o, i=i: outputs[i].append(o.float().clone())  # noqa: E731
        hooks.append(module.register_forward_hook(hook))
    state = renderer.read_state({"Mira": store}, [("Mira",)], [7])
    try:
        with consistent_attention(pipe.unet, state, pipe.scheduler), torch.inference_mode():
            result = pipe(
                prompt=["[Mira] stands at the harbour"],
                negative_prompt=["blurry"],
                generator=[torch.Generator().manual_seed(7)],
                output_type="latent",
                **renderer.run_args(),
            )
    finally:
        for hook in hooks:
            hook.remove()
    return outputs, result.images.float()


def relative(a: Any, b: Any) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def compare(runs: tuple[list[list[Any]], Any], ref: tuple[list[list[Any]], Any]) -> dict[str, Any]:
    per_layer = [
        sum(relative(x, y) for x, y in zip(xs, ys, strict=True)) / len(ys)
        for xs, ys in zip(runs[0], ref[0], strict=True)
    ]
    return {
        "attention_error_per_layer": per_layer,
        "attention_error_mean": sum(per_layer) / len(per_layer),
        "attention_error_max": max(per_layer),
        "final_latent_difference": relative(runs[1], ref[1]),
    }


def compact_modes(loaded: Any, settings: RenderSettings) -> dict[str, Any]:
    """Each compact mode against the exact store, and two exact stores against each other."""
    mira = cast_of(1)["Mira"]
    # the exact store (float16, every step banked), whatever the defaults are
    settings = dataclasses.replace(settings, store_dtype="float16", bank_fraction=1.0)
    exact_renderer = StoryRenderer(loaded, settings)
    exact = write_store(exact_renderer, mira, None)
    reference = read_pass(exact_renderer, exact)
    other = compare(read_pass(exact_renderer, write_store(exact_renderer, mira, 424242)), reference)
    results: dict[str, Any] = {"exact, another sampling seed": {"bytes_ratio": 1.0, **other}}
    modes = {
        "bfloat16": {"store_dtype": "bfloat16"},
        "float8 (the default)": {"store_dtype": "float8"},
        "half the steps": {"bank_fraction": 0.5},
        "float8, half the steps": {"store_dtype": "float8", "bank_fraction": 0.5},
    }
    for name, changes in modes.items():
        renderer = StoryRenderer(loaded, dataclasses.replace(settings, **changes))
        store = write_store(renderer, mira, None)
        measured = compare(read_pass(renderer, store), reference)
        results[name] = {
            "bytes_ratio": store.nbytes / exact.nbytes,
            **measured,
            "below_sampling_noise": measured["final_latent_difference"]
            < other["final_latent_difference"],
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--size", type=int, default=256, help="panel size in pixels")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--channels", type=int, nargs=3, default=(64, 128, 256),
                        help="UNet widths per level (real SDXL: 320 640 1280)")  # fmt: skip
    parser.add_argument("--renders", type=int, default=50, help="renders in the churn run")
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny model: threads only add noise on a shared machine
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        loaded = load_pipeline("tiny-sdxl", cache_dir=root / "models")
        widen(loaded, tuple(args.channels))
        settings = RenderSettings(width=args.size, height=args.size, steps=args.steps)
        small = RenderSettings(width=64, height=64, steps=2)
        results: dict[str, Any] = {
            "model": f"tiny-sdxl with an SDXL-shaped random UNet {tuple(args.channels)}, CPU",
            "size": args.size,
            "steps": args.steps,
            "store_bytes_sdxl_defaults": sdxl_defaults_store(),
        }
        memory = identity_memory(loaded, settings, root / "stores")
        results["identity_memory"] = memory
        results["peak_identity_rss_bytes"] = memory["stream"]["peak_rss_above_plain_bytes"]
        ratio = recompute_ratio(loaded, settings, root / "stores-ratio")
        results["recompute"] = ratio
        results["recompute_time_ratio"] = ratio["ratio"]
        results["churn"] = churn(loaded, small, root / "stores-churn", args.renders)
        results["disk_bytes_after_churn"] = results["churn"]["disk_bytes_after_churn"]
        results["compact_modes"] = compact_modes(loaded, settings)

    mib = 1024**2
    print(f"store, real SDXL at defaults: {results['store_bytes_sdxl_defaults'] / GiB:.2f} GiB")
    step = memory["step_bytes"] / mib
    print(f"\npage of 8 characters ({args.size}², {args.steps} steps): "
          f"store {memory['store_bytes'] / mib:.2f} MiB, one step {step:.3f} "
          f"MiB per character; one step of all 8 = {8 * step:.2f} MiB")  # fmt: skip
    print(f"{'policy':<10} {'RAM budget MiB':>15} {'tokens held MiB':>16} "
          f"{'peak RSS above plain page MiB: 1st render':>42} {'2nd':>7}")  # fmt: skip
    for policy in ("store", "stream", "recompute"):
        row = memory[policy]
        print(f"{policy:<10} {row['ram_budget_bytes'] / mib:>15.2f} "
              f"{row['banked_tokens_held_bytes'] / mib:>16.2f} "
              f"{row['peak_rss_above_plain_bytes'] / mib:>42.2f} "
              f"{row['second_render_peak_rss_above_plain_bytes'] / mib:>7.2f}")  # fmt: skip
    print(f"\nread panel: store {ratio['store_s']:.2f} s, recompute {ratio['recompute_s']:.2f} s, "
          f"ratio {ratio['ratio']:.2f}")  # fmt: skip
    c = results["churn"]
    print(f"churn: {c['renders']} renders, budget {c['budget_bytes'] / mib:.2f} MiB, after "
          f"{c['disk_bytes_after_churn'] / mib:.2f} MiB, evicted {c['evicted']}, "
          f"most over budget {c['max_over_budget_bytes']} B")  # fmt: skip
    print(f"\n{'compact mode':<30} {'bytes':>6} {'attn err mean':>14} {'attn err max':>13} "
          f"{'latent diff':>12} {'< seed noise':>13}")  # fmt: skip
    for name, row in results["compact_modes"].items():
        print(f"{name:<30} {row['bytes_ratio']:>6.3f} {row['attention_error_mean']:>14.4f} "
              f"{row['attention_error_max']:>13.4f} {row['final_latent_difference']:>12.4f} "
              f"{row.get('below_sampling_noise', '—')!s:>13}")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
