"""A prompt longer than the text encoder reads: one log line of ours naming the panel,
and nothing from the libraries on standard error."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from storyloom.generation.models import LoadedModel, load_pipeline
from storyloom.generation.prompt_length import note_cut_prompts
from storyloom.generation.renderer import PanelSpec, RenderSettings, StoryRenderer

SMALL = RenderSettings(width=64, height=64, steps=2, guidance=5.0)
LONG = "the harbour at dawn, " * 40


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_pipeline("tiny-sdxl", cache_dir=tmp_path_factory.mktemp("models"))


def test_only_prompts_past_the_encoders_length_are_named(sdxl: LoadedModel) -> None:
    pipe = sdxl.pipeline
    assert note_cut_prompts(pipe, [("panel 1", "a cat"), ("panel 2", LONG)]) == ["panel 2"]


def test_a_cut_beat_is_one_line_of_ours_naming_its_panel(
    sdxl: LoadedModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    renderer = StoryRenderer(sdxl, SMALL, tmp_path)
    panels = [PanelSpec(1, "a cat"), PanelSpec(2, LONG)]
    with caplog.at_level(logging.INFO):
        renderer.render_panels(panels, {}, style="comic", seed=1)
    cut = [r for r in caplog.records if "too long for the text encoder" in r.getMessage()]
    assert len(cut) == 1 and cut[0].name == "storyloom.generation.prompt_length"
    assert "panel 2 (" in cut[0].getMessage() and "panel 1 " not in cut[0].getMessage()
    assert not [r for r in caplog.records if "truncated" in r.getMessage()]
    assert not [r for r in caplog.records if "Token indices sequence" in r.getMessage()]


def test_a_fresh_process_rendering_a_cut_beat_writes_nothing_to_stderr(
    sdxl: LoadedModel, tmp_path: Path
) -> None:
    cache = tmp_path / "models"
    load_pipeline("tiny-sdxl", cache_dir=cache)  # built here; the child only loads it
    child = f"""
from pathlib import Path
from storyloom.generation.models import load_pipeline
from storyloom.generation.renderer import CharacterSpec, PanelSpec, RenderSettings, StoryRenderer
loaded = load_pipeline("tiny-sdxl", cache_dir=Path({str(cache)!r}))
r = StoryRenderer(loaded, RenderSettings(width=64, height=64, steps=2), Path({str(tmp_path)!r}))
mira = CharacterSpec("Mira", {LONG!r}, seed=3)
r.render_panels([PanelSpec(1, "[Mira] " + {LONG!r}, ("Mira",))], {{"Mira": mira}},
                style="comic", seed=1)
"""
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""
