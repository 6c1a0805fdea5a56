"""Motion backends that make in-between frames for clips (see `motion.py`).

`RendererMotion` (the default) renders in-betweens with the story's own pipeline: the
prompt embeddings of two consecutive panels are interpolated linearly, their initial
noise (the exact noise each panel's seed gives) spherically, and every frame is
denoised with read-mode Consistent Self-Attention over the identities of the characters
of both panels, so characters keep their look while the scene moves. At fraction 0 the
frame is panel a again and at 1 panel b. It runs on the tiny model in tests; on real
models it is GPU work (one full denoise per frame).

`KeyframeVideoMotion` hands each pair of panels to a diffusers first/last-frame video
pipeline (Wan 2.1 FLF2V through `WanImageToVideoPipeline(image=…, last_image=…)`) where
the operator has its weights (`STORYLOOM_MOTION_MODEL`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from storyloom.generation.motion import PanelFrame
from storyloom.generation.prompts import derive_seed, panel_prompt
from storyloom.generation.renderer import (
    CharacterSpec,
    Progress,
    RenderInputError,
    StepTracker,
    StoryRenderer,
)
from storyloom.generation.styles import get_style


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation, which keeps Gaussian noise at the norm the scheduler expects."""
    a32, b32 = a.double().flatten(), b.double().flatten()
    cos = torch.clamp(torch.dot(a32, b32) / (a32.norm() * b32.norm()), -1.0, 1.0)
    angle = torch.arccos(cos)
    if angle.abs() < 1e-6:  # (anti)parallel: plain lerp is exact enough
        return (1 - t) * a + t * b
    out = (torch.sin((1 - t) * angle) * a32 + torch.sin(t * angle) * b32) / torch.sin(angle)
    return out.view_as(a).to(a.dtype)


def render_inbetweens(
    renderer: StoryRenderer,
    a: PanelFrame,
    b: PanelFrame,
    fractions: Sequence[float],
    characters: Mapping[str, CharacterSpec],
    style: str,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> list[Image.Image]:
    """Frames at ``fractions`` (0 = panel a, 1 = panel b), rendered with CSA identities."""
    if a.seed is None or b.seed is None:
        raise RenderInputError("in-betweens need the render seeds of both panels")
    pipe, s = renderer.pipe, renderer.settings
    look = get_style(style)
    shown = tuple(dict.fromkeys((*a.characters, *b.characters)))
    unknown = [n for n in shown if n not in characters]
    if unknown:
        raise RenderInputError(f"in-betweens show unknown {unknown[0]!r}")
    batches = [fractions[i : i + s.max_batch] for i in range(0, len(fractions), s.max_batch)]
    missing = renderer.missing_stores(shown, characters, style)
    tracker = StepTracker(s.steps * (len(batches) + missing), on_progress, should_cancel)

    prompts = [
        look.apply(panel_prompt(frame.prompt, {n: characters[n] for n in frame.characters}))
        for frame in (a, b)
    ]
    with renderer._lock:
        resolved = renderer.resolve_stores(shown, characters, style, None, tracker)
        embeds = _encode(renderer, prompts, look.negative)
        noise = [_initial_noise(renderer, seed) for seed in (a.seed, b.seed)]
        images: list[Image.Image] = []
        for batch in batches:
            inputs = {
                name: torch.cat([(1 - t) * pair[0:1] + t * pair[1:2] for t in batch])
                for name, pair in embeds.items()
            }
            latents = torch.cat([slerp(noise[0], noise[1], t) for t in batch])
            # one schedule seed per frame, from both panels' seeds and where the frame lies
            seeds = [derive_seed(a.seed, b.seed, "between", f"{t:.6f}") for t in batch]
            state = renderer.read_state(resolved, [shown] * len(batch), seeds)
            callback = tracker.step_callback("in-betweens", (a.index, b.index), s.steps)
            images += renderer.pipeline_call(
                state,
                callback,
                latents=latents.to(pipe.device),
                generator=[torch.Generator().manual_seed(a.seed ^ b.seed) for _ in batch],
                **inputs,
            )
    return images


def _encode(renderer: StoryRenderer, prompts: list[str], negative: str) -> dict[str, torch.Tensor]:
    """Prompt embeddings of both panels (batch of 2), as the pipeline's keyword inputs."""
    pipe = renderer.pipe
    cfg = renderer.settings.guidance > 1
    negatives = [negative] * len(prompts)
    with torch.inference_mode():
        if renderer.loaded.family == "sdxl":
            pe, npe, ppe, nppe = pipe.encode_prompt(
                prompt=prompts,
                device=pipe.device,
                num_images_per_prompt=1,
                do_classifier_free_guidance=cfg,
                negative_prompt=negatives,
            )
            out = {"prompt_embeds": pe, "pooled_prompt_embeds": ppe}
            if cfg:
                out |= {"negative_prompt_embeds": npe, "negative_pooled_prompt_embeds": nppe}
            return out
        pe, npe = pipe.encode_prompt(prompts, pipe.device, 1, cfg, negatives)
        return {"prompt_embeds": pe, **({"negative_prompt_embeds": npe} if cfg else {})}


def _initial_noise(renderer: StoryRenderer, seed: int) -> torch.Tensor:
    """The unscaled initial latents the pipeline draws for a panel with this seed."""
    pipe, s = renderer.pipe, renderer.settings
    scale = pipe.vae_scale_factor
    shape = (1, pipe.unet.config.in_channels, s.height // scale, s.width // scale)
    return randn_tensor(
        shape,
        generator=torch.Generator().manual_seed(seed),
        device=pipe.device,
        dtype=pipe.unet.dtype,
    )


class RendererMotion:
    """In-betweens rendered by the story's own pipeline with the story's identities."""

    name = "renderer"

    def __init__(
        self,
        renderer: StoryRenderer,
        characters: Mapping[str, CharacterSpec],
        style: str,
        on_progress: Callable[[Progress], None] | None = None,
    ):
        self.renderer = renderer
        self.characters = characters
        self.style = style
        self.on_progress = on_progress

    def inbetweens(self, a: PanelFrame, b: PanelFrame, count: int) -> list[Image.Image]:
        """``count`` frames evenly spaced strictly between panel a and panel b."""
        fractions = [i / (count + 1) for i in range(1, count + 1)]
        return render_inbetweens(
            self.renderer,
            a,
            b,
            fractions,
            self.characters,
            self.style,
            on_progress=self.on_progress,
        )


class KeyframeVideoMotion:
    """First/last-frame video between two panels with a diffusers Wan FLF2V pipeline."""

    name = "keyframe-video"

    def __init__(self, pipeline: Any, steps: int = 30, guidance: float = 5.0):
        self.pipe = pipeline
        self.steps = steps
        self.guidance = guidance

    @classmethod
    def load(cls, model: str, device: str, dtype: torch.dtype) -> KeyframeVideoMotion:
        """Load a first/last-frame pipeline (a hub id or local folder) once per process."""
        from diffusers import WanImageToVideoPipeline

        from storyloom.generation.models import ModelLoadError

        try:
            pipe = WanImageToVideoPipeline.from_pretrained(model, torch_dtype=dtype)
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"could not load the motion model {model}: {error}. Point "
                "STORYLOOM_MOTION_MODEL at a local Wan FLF2V folder, or use the renderer backend"
            ) from None
        pipe.to(device)
        return cls(pipe)

    def inbetweens(self, a: PanelFrame, b: PanelFrame, count: int) -> list[Image.Image]:
        """``count`` frames from a video whose first frame is panel a and last is panel b."""
        frames_needed = count + 2
        num_frames = 4 * -(-(frames_needed - 1) // 4) + 1  # Wan wants 4k + 1 frames
        width, height = a.image.size
        video = self.pipe(
            image=a.image,
            last_image=b.image.resize((width, height)),
            prompt=b.prompt or a.prompt,
            height=height - height % 16,
            width=width - width % 16,
            num_frames=num_frames,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            output_type="pil",
        ).frames[0]
        inner = video[1:-1]
        picks = [round(i * (len(inner) - 1) / max(count - 1, 1)) for i in range(count)]
        return [inner[i] for i in picks]
