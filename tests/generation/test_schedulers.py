"""Every scheduler diffusers offers for these pipelines banks and reads by denoising step,
or is refused before any work (DESIGN §5: steps are not UNet calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from storyloom.generation.consistent_attention import CSAState
from storyloom.generation.models import LoadedModel, load_pipeline, make_scheduler
from storyloom.generation.renderer import (
    CharacterSpec,
    PanelSpec,
    Progress,
    RenderSettings,
    StoryRenderer,
)
from storyloom.generation.steps import SchedulerError, check_scheduler

STEPS = 4
# every layer call of every step reads stored tokens, so a call that finds none shows
SMALL = RenderSettings(
    width=64, height=64, steps=STEPS, guidance=5.0, max_batch=2, csa_schedule="every-step"
)
MIRA = CharacterSpec("Mira", "a girl with short red hair", seed=11)

# (family, scheduler, config changes, UNet calls for 4 steps)
SUPPORTED = [
    ("first order", "EulerDiscreteScheduler", {}, 4),
    ("first order, ancestral", "EulerAncestralDiscreteScheduler", {}, 4),
    ("first order, DDIM", "DDIMScheduler", {}, 4),
    ("multistep", "DPMSolverMultistepScheduler", {}, 4),
    ("multistep, predictor-corrector", "UniPCMultistepScheduler", {}, 4),
    ("singlestep, uneven steps quirk", "DPMSolverSinglestepScheduler", {}, 4),
    ("second order, Heun", "HeunDiscreteScheduler", {}, 7),
    ("second order, interpolated timesteps", "KDPM2DiscreteScheduler", {}, 7),
    ("second order, ancestral", "KDPM2AncestralDiscreteScheduler", {}, 7),
    ("PLMS, first step in two calls", "PNDMScheduler", {"skip_prk_steps": True}, 5),
]


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))


def use_scheduler(loaded: LoadedModel, name: str, changes: dict[str, Any]) -> None:
    pipe: Any = loaded.pipeline
    base = getattr(pipe, "_base_scheduler_config", None) or dict(pipe.scheduler.config)
    pipe._base_scheduler_config = base
    pipe.scheduler = make_scheduler(name, {**base, **changes})


@pytest.mark.parametrize("family,name,changes,calls", SUPPORTED, ids=[row[0] for row in SUPPORTED])
def test_every_unet_call_of_a_step_reads_the_tokens_banked_for_that_step(
    sdxl: LoadedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    family: str,
    name: str,
    changes: dict[str, Any],
    calls: int,
) -> None:
    use_scheduler(sdxl, name, changes)
    renderer = StoryRenderer(sdxl, SMALL, tmp_path)
    states: list[CSAState] = []
    real_call = renderer.pipeline_call

    def keep_state(state: CSAState | None, callback: Any, **inputs: Any) -> Any:
        if state is not None:
            states.append(state)
        return real_call(state, callback, **inputs)

    monkeypatch.setattr(renderer, "pipeline_call", keep_state)
    progress: list[Progress] = []
    store = renderer.lock_character(MIRA, "comic", on_progress=progress.append).store
    # one bank per step, every layer, the step's timesteps as the scheduler set them
    assert sorted(store.tokens) == list(range(STEPS))
    assert all(len(layers) == len(renderer.layer_names) for layers in store.tokens.values())
    assert [p.done for p in progress] == list(range(1, STEPS + 1))

    renderer.render_panels([PanelSpec(1, "[Mira] runs", ("Mira",))], {"Mira": MIRA},
                           style="comic", seed=3)  # fmt: skip
    write, read = states
    assert write.unet_calls == read.unet_calls == calls
    assert write.step == read.step == STEPS - 1
    # no UNet call of the read pass fell back to plain attention for want of tokens
    assert read.missed_reads == 0
    assert read.stored_reads == calls * len(renderer.layer_names)


def test_a_scheduler_that_cannot_be_keyed_by_step_is_refused_before_any_work(
    sdxl: LoadedModel, tmp_path: Path
) -> None:
    use_scheduler(sdxl, "PNDMScheduler", {"skip_prk_steps": False})
    with pytest.raises(SchedulerError, match="PNDMScheduler calls the UNet 13 times for 4 steps"):
        StoryRenderer(sdxl, SMALL, tmp_path)
    with pytest.raises(SchedulerError, match="skip_prk_steps"):
        check_scheduler(sdxl.pipeline.scheduler, STEPS)  # type: ignore[attr-defined]


def test_second_order_read_calls_of_one_step_share_one_projection_of_the_stored_tokens(
    sdxl: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_scheduler(sdxl, "HeunDiscreteScheduler", {})
    renderer = StoryRenderer(sdxl, SMALL, tmp_path)
    renderer.lock_character(MIRA, "comic")
    stepped: list[int] = []
    real = CSAState.begin_step

    def count(self: CSAState, *args: Any) -> None:
        stepped.append(self.step + 1)
        real(self, *args)

    monkeypatch.setattr(CSAState, "begin_step", count)
    renderer.render_panels([PanelSpec(1, "[Mira] runs", ("Mira",))], {"Mira": MIRA},
                           style="comic", seed=3)  # fmt: skip
    assert stepped == list(range(STEPS))  # 7 calls, 4 steps: tokens moved once per step
