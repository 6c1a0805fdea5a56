"""`storyloom eval`: render a story file and score how well its characters keep their look."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from storyloom.app.render_story import render_story
from storyloom.app.storyfile import StoryFile
from storyloom.config import Settings
from storyloom.generation.identity_eval import Encoders, StoryScores, score_story
from storyloom.generation.renderer import StoryRenderer


def evaluate_story(
    story: StoryFile, settings: Settings, renderer: StoryRenderer | None = None
) -> dict[str, Any]:
    """Render ``story`` (sheets, then panels) and score it; a JSON-ready report."""
    started = time.perf_counter()
    renderer = renderer or StoryRenderer.from_settings(settings)
    encoders = Encoders(
        settings.eval_clip_model, settings.eval_dino_model, settings.model_cache_dir
    )
    drawn = render_story(story, renderer)
    scenes = {p.number: p.scene for p in story.panels}
    scores = score_story(
        encoders,
        {name: sheet.images[0] for name, sheet in drawn.sheets.items()},
        [(p.index, scenes[p.index], p.characters, p.image) for p in drawn.panels],
    )
    return report(story, settings, scores, time.perf_counter() - started)


def report(
    story: StoryFile, settings: Settings, scores: StoryScores, seconds: float
) -> dict[str, Any]:
    return {
        "story": story.title,
        "model": settings.model,
        "identity_mode": story.identity_mode or settings.identity_mode,
        "steps": settings.steps,
        "size": [settings.width, settings.height],
        "clip_model": settings.eval_clip_model,
        "dino_model": settings.eval_dino_model or None,
        "characters": {name: asdict(s) for name, s in scores.characters.items()},
        "clip_t": {str(index): value for index, value in scores.clip_t.items()},
        "clip_t_mean": scores.clip_t_mean,
        "seconds": seconds,
    }


def table(result: dict[str, Any]) -> str:
    """The report as a plain-text table (one row per character)."""
    columns = ("panels", "clip_i_sheet", "clip_i_panels", "dino_sheet", "dino_panels")
    names = list(result["characters"]) or ["(nobody)"]
    width = max(9, *map(len, names))
    lines = [
        f"{result['story']} — {result['model']}, identity mode {result['identity_mode']}",
        f"{'character':<{width}}  " + "  ".join(f"{c:>13}" for c in columns),
    ]
    for name, row in result["characters"].items():
        lines.append(f"{name:<{width}}  " + "  ".join(f"{_shown(row[c]):>13}" for c in columns))
    lines.append(
        f"CLIP-T (prompt alignment, mean of {len(result['clip_t'])} panels): "
        f"{_shown(result['clip_t_mean'])}"
    )
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
