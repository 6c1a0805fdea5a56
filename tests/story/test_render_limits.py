"""Caps on one job are checked when it is asked for: a short sentence naming the limit,
no job recorded, nothing queued (so no GPU time is ever spent on a job over a cap)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from storyloom.story import service
from storyloom.story.errors import LimitExceeded
from storyloom.story.model import JobKind
from storyloom.story.render_limits import RenderLimits
from storyloom.story.service import Deps

from .conftest import member
from .fakes import FakeDatabase, FakeQueue

ANN = member("Ann")
LIMITS = RenderLimits(max_panels=6, max_clip_seconds=10.0, max_clip_frames=300)


async def _story(deps: Deps, beats: int) -> None:
    await service.new_story(deps, ANN, "The Lighthouse")
    await service.cast_character(deps, ANN, "Mira", "a girl in a green raincoat")
    for n in range(beats):
        await service.add_beat(deps, ANN, f"[Mira] beat {n}")


async def _refused(deps: Deps, database: FakeDatabase, queue: FakeQueue, call: object,
                   match: str) -> None:  # fmt: skip
    before = (database.state, database.commits, list(queue.submitted))
    with pytest.raises(LimitExceeded, match=match) as caught:
        await call  # type: ignore[misc]
    assert str(caught.value).count(".") <= 2  # one short sentence (and a decimal point)
    assert (database.state, database.commits, list(queue.submitted)) == before


async def test_a_page_over_the_panel_cap_is_refused_and_a_range_within_it_is_queued(
    deps: Deps, database: FakeDatabase, queue: FakeQueue
) -> None:
    deps = replace(deps, render_limits=LIMITS)
    await _story(deps, 8)
    await _refused(deps, database, queue, service.render(deps, ANN), "at most 6 panels")
    job = await service.render(deps, ANN, 3, 8)
    assert job.kind is JobKind.PAGE and queue.submitted == [job.id]


async def test_a_clip_over_its_length_or_frames_is_refused_before_any_work(
    deps: Deps, database: FakeDatabase, queue: FakeQueue
) -> None:
    deps = replace(deps, render_limits=LIMITS)
    await _story(deps, 6)
    # 6 beats at 2.5 s make 15 s: over the 10 s cap, within the panel cap
    await _refused(deps, database, queue, service.clip(deps, ANN), r"at most 10 s.*at most 4 beats")
    fewer_frames = replace(deps, render_limits=replace(LIMITS, max_clip_seconds=60.0))
    # 6 beats make 360 frames at 24/s: over 300
    await _refused(deps, database, queue, service.clip(fewer_frames, ANN), "at most 300 frames")
    job = await service.clip(deps, ANN, 1, 4)
    assert job.kind is JobKind.CLIP and queue.submitted == [job.id]


@pytest.mark.parametrize(
    "limits,match",
    [
        (RenderLimits(width=2048, height=1024, max_pixels=1024 * 1024), "2048×1024"),
        (RenderLimits(steps=80, max_steps=50), "80 denoising steps"),
    ],
)
async def test_size_and_steps_over_the_caps_refuse_every_kind_of_job(
    deps: Deps, database: FakeDatabase, queue: FakeQueue, limits: RenderLimits, match: str
) -> None:
    await _story(deps, 2)
    deps = replace(deps, render_limits=limits)
    for call in (
        service.render(deps, ANN),
        service.clip(deps, ANN),
        service.reroll_panel(deps, ANN, 1),
        service.lock_look(deps, ANN, "Mira"),
        service.reroll_look(deps, ANN, "Mira"),
    ):
        await _refused(deps, database, queue, call, match)
