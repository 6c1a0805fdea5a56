"""One typed settings object, read once per process and passed down.

Values come from (highest first) constructor arguments, `STORYLOOM_*` environment
variables, a TOML file named by `STORYLOOM_CONFIG_FILE` (or `storyloom.toml` in the
working directory), then the defaults below. Secrets are read only from the environment
and are never logged (they are `SecretStr`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_MODEL = "stabilityai/stable-diffusion-xl-base-1.0"
TINY_MODELS = ("tiny-sdxl", "tiny-sd15")
# The tiny offline models exist for demos and tests: small panels and few steps keep a
# whole story under a minute on a CPU. Explicitly set values always win.
# One CPU thread too: they are too small to gain from more, and on a busy machine torch's
# spinning worker threads slowed a lock pass from 1 s to 116 s.
TINY_DEFAULTS = {"width": 128, "height": 128, "steps": 8, "cpu_threads": 1}


def _config_file() -> Path:
    return Path(os.environ.get("STORYLOOM_CONFIG_FILE", "storyloom.toml"))


class Settings(BaseSettings):
    """Every setting storyloom reads; each field says what it does."""

    model_config = SettingsConfigDict(
        env_prefix="STORYLOOM_",
        extra="forbid",
        validate_default=True,
        protected_namespaces=(),
    )

    # --- model -----------------------------------------------------------------------
    model: str = Field(
        DEFAULT_MODEL,
        description=(
            "Diffusion model: a hub id (e.g. stabilityai/stable-diffusion-xl-base-1.0), a "
            "local diffusers folder, a single-file checkpoint (.safetensors/.ckpt), or one "
            "of the built-in offline models 'tiny-sdxl' / 'tiny-sd15' (which default to "
            "128 px panels and 8 steps unless width/height/steps are set)."
        ),
    )
    model_family: Literal["auto", "sdxl", "sd15"] = Field(
        "auto",
        description="Pipeline family; 'auto' reads it from the model. Needed only for "
        "single-file checkpoints whose family cannot be detected.",
    )
    model_config_dir: Path | None = Field(
        None,
        description="Local diffusers folder whose configs describe a single-file checkpoint "
        "(needed offline, since from_single_file otherwise fetches configs from the hub).",
    )
    model_cache_dir: Path = Field(
        Path.home() / ".cache" / "storyloom" / "models",
        description="Where the built-in tiny models are written and loaded from.",
    )
    device: str = Field(
        "auto", description="Torch device: 'auto' (cuda if available, else cpu), 'cpu', 'cuda:0'…"
    )
    cpu_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Torch CPU threads for rendering; 0 keeps torch's default (all cores).",
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="Compute dtype; 'auto' is float16 on CUDA and float32 on CPU."
    )

    # --- rendering -------------------------------------------------------------------
    steps: int = Field(30, ge=1, le=200, description="Denoising steps per image.")
    guidance: float = Field(
        5.0, ge=0.0, le=30.0, description="Classifier-free guidance scale (≤ 1 turns CFG off)."
    )
    width: int = Field(768, ge=64, le=2048, description="Panel width in pixels (multiple of 8).")
    height: int = Field(768, ge=64, le=2048, description="Panel height in pixels (multiple of 8).")
    scheduler: str = Field(
        "default",
        description="Scheduler class name from diffusers (e.g. EulerDiscreteScheduler, "
        "DDIMScheduler), or 'default' for the model's own.",
    )
    style: str = Field("comic", description="Default style preset for new stories.")
    max_batch: int = Field(
        4, ge=1, le=64, description="Most read panels denoised together in one batch."
    )

    # --- consistent self-attention ---------------------------------------------------
    csa_rate: float = Field(
        0.5, gt=0.0, le=1.0, description="Share of identity-image tokens sampled per step/layer."
    )
    identity_images: int = Field(
        2, ge=1, le=8, description="Identity panels (K) denoised together to lock a character."
    )
    csa_schedule: Literal["reference", "every-step"] = Field(
        "reference",
        description="When consistent attention runs: 'reference' (StoryDiffusion's schedule: "
        "plain attention at the first step, then each layer call skips it with probability "
        "0.3 up to step 20 and 0.1 after, drawn from the panel's seed) or 'every-step' "
        "(every layer call of every step: a stronger pull towards the locked look).",
    )
    store_dtype: Literal["float16", "bfloat16", "float8"] = Field(
        "float8",
        description="Precision of banked identity tokens. 'float8' (e4m3, half the bytes) is "
        "the default: its effect on panels measured below the difference between two exact "
        "stores sampled with other seeds; 'float16' is the exact setting.",
    )
    store_bank_fraction: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="Share of denoising steps whose identity tokens are banked (from the "
        "first step). Below 1.0 is a compact approximation: later steps use plain attention.",
    )
    identity_mode: Literal["csa", "csa+reference"] = Field(
        "csa",
        description="How later panels keep a character's look: 'csa' (Consistent "
        "Self-Attention on the banked tokens) or 'csa+reference' (also conditioned, through "
        "the image adapter, on the character's first sheet image; a story file's "
        "`identity_mode` overrides it).",
    )
    adapter_model: str = Field(
        "h94/IP-Adapter",
        description="Image adapter (IP-Adapter) for characters from a reference picture: a hub "
        "id, a local folder in the same layout, or 'tiny-ip-adapter' (random weights built "
        "for the tiny models, for tests).",
    )
    adapter_subfolder_sd15: str = Field(
        "models", description="Folder of the SD1.5 adapter weights inside adapter_model."
    )
    adapter_weight_sd15: str = Field(
        "ip-adapter_sd15.safetensors", description="SD1.5 adapter weight file."
    )
    adapter_subfolder_sdxl: str = Field(
        "sdxl_models", description="Folder of the SDXL adapter weights inside adapter_model."
    )
    adapter_weight_sdxl: str = Field(
        "ip-adapter_sdxl.safetensors", description="SDXL adapter weight file."
    )
    adapter_image_encoder: str = Field(
        "image_encoder",
        description="The adapter's CLIP image encoder: a folder name inside the weights' "
        "folder, or a path inside adapter_model (with a '/').",
    )
    adapter_scale: float = Field(
        0.6,
        gt=0.0,
        le=2.0,
        description="How strongly a reference picture conditions the image (the adapter's "
        "cross-attention scale).",
    )
    eval_clip_model: str = Field(
        "openai/clip-vit-base-patch32",
        description="CLIP model `storyloom eval` scores with (CLIP-I, CLIP-T): a hub id, a "
        "local folder, or 'tiny-clip' (random weights, for tests).",
    )
    eval_dino_model: str = Field(
        "",
        description="DINO model for `storyloom eval`'s DINO score (e.g. facebook/dinov2-small, "
        "or 'tiny-dino' for tests); empty: no DINO score.",
    )
    store_dir: Path = Field(
        Path("storyloom-data") / "stores",
        description="Where identity stores (safetensors) are saved and found again.",
    )
    output_dir: Path = Field(
        Path("storyloom-out"), description="Where pages, panels and clips are written."
    )
    character_dir: Path = Field(
        Path("storyloom-characters"),
        description="Where the character library's sheet pictures and members' reference "
        "pictures are kept (clean PNGs named by their SHA-256; a picture is deleted once no "
        "character or library entry uses it). Workers read references from here: share it "
        "with them in the distributed mode.",
    )

    # --- clips ------------------------------------------------------------------------
    clip_budget_mib: float = Field(
        10.0,
        gt=0.1,
        le=500.0,
        description="Largest clip file in MiB (10 MiB is Discord's default bot upload limit).",
    )
    motion_backend: Literal["renderer", "keyframe-video"] = Field(
        "renderer",
        description="How --motion clips make in-between frames: 'renderer' (the story's "
        "pipeline with its locked identities) or 'keyframe-video' (a first/last-frame video "
        "model, see motion_model).",
    )
    motion_model: str = Field(
        "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers",
        description="First/last-frame video pipeline for the 'keyframe-video' backend: a hub "
        "id or local diffusers folder of WanImageToVideoPipeline.",
    )

    # --- storage ---------------------------------------------------------------------
    database_url: str = Field(
        "sqlite+aiosqlite:///storyloom-data/storyloom.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///PATH (default) or "
        "postgresql+asyncpg://USER:PASS@HOST/DB.",
    )

    # --- budgets (checked by `storyloom doctor`; defaults fit a 16 GiB-RAM GPU worker
    # with 100 GiB of disk: ~7 GiB of model weights, 40 GiB of stores, 10 GiB of outputs)
    identity_ram_mib: int = Field(
        3072,
        ge=16,
        le=1024 * 1024,
        description="Host RAM for identity data while rendering (stores held whole, or one "
        "layer of each shown character at a time when streamed or recomputed). A render whose "
        "stores do not fit is streamed step by step from disk; if even one step of every shown "
        "character does not fit, identity images are denoised beside the panels instead "
        "(recompute: no store; each step waits in a spool file beside the stores).",
    )
    store_disk_gib: float = Field(
        40.0,
        gt=0.0,
        le=100000.0,
        description="Disk for identity stores in store_dir (SDXL at 768², 30 steps: 3.5 GiB "
        "per character). Least recently used stores are deleted past it and rebuilt from "
        "their spec when needed again.",
    )
    output_disk_gib: float = Field(
        10.0,
        gt=0.0,
        le=100000.0,
        description="Disk for job results in output_dir; the oldest jobs' folders are deleted "
        "past it.",
    )
    keep_outputs_hours: float = Field(
        24.0,
        ge=0.0,
        le=24 * 365,
        description="How long a posted result's local files are kept in output_dir (they are "
        "in the chat by then); 0 deletes them as soon as they are posted.",
    )
    max_panels_per_job: int = Field(
        32,
        ge=1,
        le=300,
        description="Most panels one render job may draw (a page of more beats is refused "
        "when asked for, naming the limit); also every server's own cap until its moderators "
        "lower it (/story settings max-panels).",
    )
    max_clip_seconds: float = Field(
        60.0,
        ge=1.0,
        le=600.0,
        description="Longest clip in seconds (2.5 s per beat), checked when the clip is asked for.",
    )
    max_clip_frames: int = Field(
        1440,
        ge=24,
        le=14400,
        description="Most frames in one clip (24 per second), checked when the clip is asked for.",
    )
    max_panel_pixels: int = Field(
        1024 * 1024,
        ge=64 * 64,
        le=2048 * 2048,
        description="Largest panel (width × height) this deployment renders; jobs are refused "
        "when asked for if width × height is above it.",
    )
    max_steps: int = Field(
        50,
        ge=1,
        le=200,
        description="Most denoising steps per image; jobs are refused when asked for if "
        "`steps` is above it.",
    )

    max_waiting_per_member: int = Field(
        3,
        ge=1,
        le=1000,
        description="Most render jobs one member may have waiting (not yet started) at once.",
    )
    max_waiting_per_workspace: int = Field(
        10,
        ge=1,
        le=10000,
        description="Most render jobs one server or Slack workspace may have waiting at once; "
        "workspaces also take turns in the line, so a busy one cannot starve the rest.",
    )
    safety_level: Literal["block", "blur", "off"] = Field(
        "block",
        description="What the image safety check does with a flagged panel, for servers whose "
        "moderators have not chosen: 'block' (a placeholder panel says why), 'blur', or "
        "'off' (posted as drawn; holds only in channels the platform marks age-restricted, "
        "such as Discord's nsfw channels, and means 'block' elsewhere).",
    )
    queue: Literal["embedded", "redis"] = Field(
        "embedded",
        description="Where render jobs go: 'embedded' renders in the bot's own process (one "
        "machine, no services); 'redis' sends them through Redis (redis_url) to `storyloom "
        "worker` processes, and the bot follows them through the database.",
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://localhost:6379/0"),
        description="Redis for the distributed mode (`storyloom worker` processes); may hold "
        "a password, so it is never logged.",
    )

    # --- chat platforms (secrets: environment only) ---------------------------------
    discord_token: SecretStr | None = Field(None, description="Discord bot token.")
    discord_api_url: str | None = Field(
        None,
        description="Base URL of Discord's REST API (default: https://discord.com/api/v10); "
        "for a proxy in front of Discord, or a test double of it. The gateway's address is "
        "then asked of it (GET /gateway/bot).",
    )
    slack_bot_token: SecretStr | None = Field(None, description="Slack bot token (xoxb-…).")
    slack_app_token: SecretStr | None = Field(
        None, description="Slack app-level token (xapp-…) for Socket Mode."
    )
    slack_signing_secret: SecretStr | None = Field(
        None, description="Slack signing secret for HTTP mode."
    )
    slack_client_id: str | None = Field(
        None, description="Slack app client id, for multi-workspace installs (HTTP + OAuth)."
    )
    slack_client_secret: SecretStr | None = Field(
        None, description="Slack app client secret, for multi-workspace installs (HTTP + OAuth)."
    )

    slack_api_url: str | None = Field(
        None,
        description="Base URL of Slack's Web API (default: https://slack.com/api/); for a "
        "proxy, or a test double of Slack.",
    )

    # --- operations (storyloom/ops) ---------------------------------------------------
    ops_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the operations server (GET /healthz and Prometheus /metrics) "
        "that `storyloom discord`, `slack` and `worker` start beside their work; 0 = off.",
    )
    ops_host: str = Field(
        "127.0.0.1",
        description="Address the operations server listens on; 0.0.0.0 in a container, so "
        "Prometheus and health checks from outside it can reach the port.",
    )
    public_base_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Public address of the operations server as readers reach it (e.g. "
        "https://comics.example.org), for `/story share` links to the reader page; unset = "
        "sharing is off. The bot side serves the reader on STORYLOOM_OPS_PORT.",
    )
    reader_requests_per_minute: int = Field(
        240, ge=1, le=1_000_000, description="Reader requests a minute per client address."
    )
    reader_burst: int = Field(
        60,
        ge=1,
        le=1_000_000,
        description="Reader requests one client address may make at once before the per-minute "
        "rate applies (a page with its images is one request per image).",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines on standard error: 'text' for people, 'json' (one object per "
        "line) for log collectors. Secrets are masked in both.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe log level shown."
    )
    stop_grace_s: float = Field(
        30.0,
        ge=0.0,
        le=3600.0,
        description="On SIGTERM a worker takes no new job and keeps rendering the one in hand "
        "this many seconds; a job not done by then is handed back (queued again for another "
        "worker) and the worker exits. Keep the container's stop grace period above it.",
    )
    job_time_limit_s: float = Field(
        1800.0,
        ge=1.0,
        le=86400.0,
        description="Longest one render job may run. A job past it is stopped at its next "
        "step and failed with that reason; one that does not stop within a minute more is "
        "abandoned (the job fails, the worker takes the next job; a `storyloom worker` "
        "process restarts itself).",
    )

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, value: int) -> int:
        if value % 8:
            raise ValueError(f"must be a multiple of 8 (got {value})")
        return value

    @model_validator(mode="after")
    def _tiny_model_defaults(self) -> Settings:
        if self.model in TINY_MODELS:
            for name, value in TINY_DEFAULTS.items():
                if name not in self.model_fields_set:
                    setattr(self, name, value)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Constructor, then environment, then the optional TOML file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path.is_file():
            sources.append(_TomlWithoutSecrets(settings_cls, toml_file=path))
        return tuple(sources)


SECRET_FIELDS = frozenset(
    name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)
)


class _TomlWithoutSecrets(TomlConfigSettingsSource):
    """The TOML file, minus secrets: those are read from the environment only, so a token
    pasted into a file that may be shared or committed is ignored, with a warning."""

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        for name in sorted(SECRET_FIELDS & values.keys()):
            del values[name]
            warnings.warn(
                f"{_config_file()}: {name} ignored; secrets are read only from the environment "
                f"(STORYLOOM_{name.upper()})",
                stacklevel=2,
            )
        return values


def load_settings(**overrides: object) -> Settings:
    """Read the settings once; keyword arguments override every other source."""
    return Settings(**overrides)  # type: ignore[arg-type]


def reference_markdown() -> str:
    """The configuration reference, generated from the settings object so it cannot drift."""
    home = str(Path.home())
    rows = [
        "# Configuration reference",
        "",
        "Generated from `storyloom/config.py` by `storyloom config-reference`; do not edit.",
        "Every setting is an environment variable (`STORYLOOM_` + the name in capitals) or a",
        "key of the TOML file named by `STORYLOOM_CONFIG_FILE` (default `storyloom.toml`).",
        "Tiny models change the defaults of width, height, steps and cpu_threads (see `model`).",
        "",
        "| variable | default | description |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "—" if default is None else str(default).replace(home, "~")
        text = (field.description or "").replace("|", "\\|")
        rows.append(f"| `STORYLOOM_{name.upper()}` | `{shown}` | {text} |")
    return "\n".join(rows) + "\n"
