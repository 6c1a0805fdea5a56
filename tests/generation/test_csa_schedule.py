"""The reference method's CSA schedule: plain first step, random skips after, from a seed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from storyloom.generation import renderer as renderer_module
from storyloom.generation.consistent_attention import ConsistentAttnProcessor, CSAState
from storyloom.generation.csa_schedule import SkipSchedule, schedule_for
from storyloom.generation.identity_store import (
    IdentitySpec,
    IdentityStore,
    StoreMismatchError,
    StoreWriter,
)
from storyloom.generation.models import LoadedModel, load_pipeline
from storyloom.generation.renderer import CharacterSpec, PanelSpec, RenderSettings, StoryRenderer

TOKENS, CHANNELS, HEADS = 24, 16, 2


def spec(schedule: str = "every-step") -> IdentitySpec:
    return IdentitySpec(
        name="Mira",
        description="a girl",
        style="comic",
        seed=1,
        identity_prompts=("pose 1", "pose 2"),
        model="test",
        width=64,
        height=64,
        steps=30,
        scheduler="test",
        guidance=5.0,
        rate=0.5,
        csa_schedule=schedule,
    )


def draws(schedule: SkipSchedule, step: int, calls: int) -> list[list[bool]]:
    return [schedule.skips(step) for _ in range(calls)]


def test_the_same_seed_gives_the_same_skips_and_another_seed_other_skips() -> None:
    assert draws(SkipSchedule([5]), 3, 200) == draws(SkipSchedule([5]), 3, 200)
    assert draws(SkipSchedule([5]), 3, 200) != draws(SkipSchedule([6]), 3, 200)


def test_a_panels_skips_do_not_depend_on_the_batch_it_is_in() -> None:
    alone = [row[0] for row in draws(SkipSchedule([5]), 3, 200)]
    batched = [row[1] for row in draws(SkipSchedule([9, 5, 11]), 3, 200)]
    assert alone == batched


def test_the_first_step_is_plain_and_draws_nothing() -> None:
    schedule = SkipSchedule([1, 2, 3])
    assert all(row == [True, True, True] for row in draws(schedule, 0, 50))
    assert schedule.calls == 0


@pytest.mark.parametrize(("step", "rate"), [(1, 0.3), (19, 0.3), (20, 0.1), (49, 0.1)])
def test_skip_rates_are_the_reference_methods(step: int, rate: float) -> None:
    rows = draws(SkipSchedule(list(range(4))), step, 4000)
    skipped = sum(sum(row) for row in rows) / (4 * len(rows))
    # 16000 draws: one standard deviation is under 0.004
    assert abs(skipped - rate) < 0.02


def test_unknown_schedule_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="reference, every-step"):
        schedule_for("sometimes", [1])
    assert schedule_for("every-step", [1]) is None


def attention() -> Attention:
    torch.manual_seed(0)
    return Attention(query_dim=CHANNELS, heads=HEADS, dim_head=CHANNELS // HEADS).eval()


def test_at_the_first_step_both_passes_are_the_stock_processor_and_the_store_is_banked() -> None:
    attn = attention()
    x = torch.randn(2 * 2, TOKENS, CHANNELS)  # K=2 identity images, CFG
    writer = StoreWriter(dataclasses.replace(spec("reference"), steps=1), ("layer",))
    write = CSAState(
        mode="write",
        layer_names=("layer",),
        panels=2,
        generator=torch.Generator().manual_seed(7),
        writer=writer,
        schedule=SkipSchedule([3]),
    )
    write.begin_step(999.0, x.device, x.dtype)
    with torch.no_grad():
        stock = AttnProcessor2_0()(attn, x)
        written = ConsistentAttnProcessor(write, 0, AttnProcessor2_0())(attn, x)
    assert torch.equal(written, stock)
    store = writer.finish()
    assert store.tokens[0][0].shape[:2] == (2, 2)  # banked although the call was plain

    panel = torch.randn(2, TOKENS, CHANNELS)
    read = CSAState(
        mode="read",
        layer_names=("layer",),
        panels=1,
        stores=[store],
        panel_stores=[(0,)],
        schedule=SkipSchedule([4]),
    )
    read.begin_step(999.0, panel.device, panel.dtype)
    with torch.no_grad():
        got = ConsistentAttnProcessor(read, 0, AttnProcessor2_0())(attn, panel)
        expected = AttnProcessor2_0()(attn, panel)
    assert torch.equal(got, expected)
    assert read.stored_reads == 0


def test_a_skipped_panel_attends_to_its_own_tokens_and_the_others_read_the_store() -> None:
    attn = attention()
    store = IdentityStore(
        spec(), ("layer",), [999.0, 998.0], {1: [torch.randn(1, 2, TOKENS // 2, CHANNELS)]}
    )
    x = torch.randn(3, TOKENS, CHANNELS)  # 3 panels, no CFG

    def run(schedule: SkipSchedule | None) -> tuple[torch.Tensor, CSAState]:
        state = CSAState(
            mode="read",
            layer_names=("layer",),
            panels=3,
            stores=[store],
            panel_stores=[(0,)] * 3,
            schedule=schedule,
        )
        state.begin_step(999.0, x.device, x.dtype)  # step 0
        state.begin_step(998.0, x.device, x.dtype)  # step 1
        with torch.no_grad():
            return ConsistentAttnProcessor(state, 0, AttnProcessor2_0())(attn, x), state

    schedule = SkipSchedule([1, 2, 3])
    skips = SkipSchedule([1, 2, 3]).skips(1)  # the draw the processor will make
    assert any(skips) and not all(skips), "seeds chosen so that the draw is mixed"
    scheduled, _ = run(schedule)
    consistent, _ = run(None)
    with torch.no_grad():
        plain = AttnProcessor2_0()(attn, x)
    for panel, skip in enumerate(skips):
        expected = plain[panel] if skip else consistent[panel]
        torch.testing.assert_close(scheduled[panel], expected, rtol=0, atol=1e-6)
        assert not torch.allclose(plain[panel], consistent[panel])


def test_every_step_keeps_the_store_key_of_before_and_reference_gets_its_own() -> None:
    # the fields added after the first stores were written, all at their defaults here
    later = {"csa_schedule", "reference", "identity_mode", "adapter"}
    before = {k: v for k, v in dataclasses.asdict(spec()).items() if k not in later}
    canonical = json.dumps(before, sort_keys=True, ensure_ascii=False)
    assert spec().key() == hashlib.sha256(canonical.encode()).hexdigest()[:32]
    assert spec("reference").key() != spec().key()


def test_a_store_locked_on_another_schedule_is_refused_for_reading() -> None:
    store = IdentityStore(spec("every-step"), ("layer",), [], {})
    with pytest.raises(StoreMismatchError, match="every-step CSA schedule"):
        store.check_compatible(
            model="test",
            steps=30,
            width=64,
            height=64,
            scheduler="test",
            csa_schedule="reference",
        )


SMALL = RenderSettings(width=64, height=64, steps=3, guidance=5.0, max_batch=4)
MIRA = CharacterSpec("Mira", "a girl with short red hair", seed=11)
PAGE = [
    PanelSpec(1, "[Mira] runs to the harbour", ("Mira",)),
    PanelSpec(2, "[Mira] waves", ("Mira",)),
]


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))


def page(renderer: StoryRenderer) -> list[bytes]:
    panels = renderer.render_panels(PAGE, {"Mira": MIRA}, style="comic", seed=5)
    return [np.asarray(p.image).tobytes() for p in panels]


def test_every_step_is_the_unscheduled_code_path_and_reference_differs(
    sdxl: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SMALL.csa_schedule == "reference"  # the default
    every = dataclasses.replace(SMALL, csa_schedule="every-step")
    every_step = page(StoryRenderer(sdxl, every, tmp_path / "every"))
    reference = page(StoryRenderer(sdxl, SMALL, tmp_path / "reference"))
    assert reference != every_step
    assert len(list((tmp_path / "reference").glob("*.safetensors"))) == 1

    # states built with no schedule at all (the code path before schedules existed)
    monkeypatch.setattr(renderer_module, "schedule_for", lambda name, seeds: None)
    unscheduled = page(StoryRenderer(sdxl, SMALL, tmp_path / "unscheduled"))
    assert unscheduled == every_step
