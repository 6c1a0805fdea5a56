"""`storyloom doctor`: check configuration, database, broker, model, GPU and folders; say
how to fix each problem.

Each check returns a `Finding`; the command prints them all (it never stops at the first
problem) and exits 1 if any failed. Secrets are reported as set or missing, never shown.
In the slim bot image (no torch) with `STORYLOOM_QUEUE=redis`, the model and GPU are the
workers' business: run the doctor there for them.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from storyloom.config import TINY_MODELS, Settings, load_settings
from storyloom.ops.redact import mask, secret_values, url_address


@dataclass(frozen=True)
class Finding:
    """One check: what was checked, whether it passed, and what to do if not."""

    check: str
    ok: bool
    detail: str


def check_settings() -> tuple[Settings | None, list[Finding]]:
    """Load the settings; every invalid field is its own finding."""
    try:
        return load_settings(), [Finding("settings", True, "all settings are valid")]
    except ValidationError as error:
        findings = [
            Finding(
                "settings",
                False,
                f"STORYLOOM_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}",
            )
            for e in error.errors()
        ]
        return None, findings


def _installed(package: str) -> bool:
    """Whether `package` can be imported here, without importing it (torch takes seconds)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a broken install
        return False


def _render_packages_missing(settings: Settings, check: str) -> Finding | None:
    """A finding when torch/diffusers are not installed here (the slim bot image)."""
    if _installed("torch") and _installed("diffusers"):
        return None
    if settings.queue == "redis":
        return Finding(check, True, "not checked here (no torch: jobs go to the workers); "
                       "run `storyloom doctor` on a worker")  # fmt: skip
    return Finding(
        check,
        False,
        "torch and diffusers are not installed, and STORYLOOM_QUEUE=embedded renders in this "
        "process: install storyloom[render] (the gpu image), or set STORYLOOM_QUEUE=redis "
        "and run `storyloom worker` on a GPU machine",
    )


def check_model(settings: Settings) -> Finding:
    """Is the model available without a download?"""
    if (missing := _render_packages_missing(settings, "model")) is not None:
        return missing
    model = settings.model
    if model in TINY_MODELS:
        return Finding("model", True, f"{model} is built in (random weights, for demos)")
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / "model_index.json").is_file():
            return Finding("model", True, f"local diffusers folder {path}")
        return Finding(
            "model", False, f"{path} has no model_index.json; save it with save_pretrained"
        )
    if path.suffix in (".safetensors", ".ckpt"):
        if not path.is_file():
            return Finding("model", False, f"checkpoint {path} does not exist")
        if settings.model_config_dir is None:
            return Finding(
                "model",
                True,
                f"checkpoint {path}; offline it also needs STORYLOOM_MODEL_CONFIG_DIR",
            )
        return Finding("model", True, f"checkpoint {path}")
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model, "model_index.json")
    if isinstance(cached, str):
        return Finding("model", True, f"{model} is in the Hugging Face cache")
    return Finding(
        "model",
        False,
        f"{model} is not downloaded yet: run `hf download {model}` where the hub "
        "is reachable, or point STORYLOOM_MODEL at a local folder",
    )


def check_gpu(settings: Settings) -> Finding:
    """Does the configured device exist?"""
    if (missing := _render_packages_missing(settings, "gpu")) is not None:
        return missing
    import torch

    has_cuda = torch.cuda.is_available()
    if settings.device.startswith("cuda") and not has_cuda:
        return Finding(
            "gpu",
            False,
            f"STORYLOOM_DEVICE is {settings.device} but torch sees no CUDA GPU; install a CUDA "
            "build of torch and the NVIDIA driver, or set STORYLOOM_DEVICE=cpu",
        )
    if has_cuda:
        name = torch.cuda.get_device_name(0)
        free, total = torch.cuda.mem_get_info(0)
        return Finding("gpu", True, f"{name}, {free / 2**30:.1f} of {total / 2**30:.1f} GiB free")
    detail = "no GPU: rendering runs on the CPU (fine for tiny models, very slow for real ones)"
    return Finding("gpu", settings.model in TINY_MODELS or settings.device == "cpu", detail)


def check_folder(name: str, path: Path) -> Finding:
    """Can storyloom write to this folder?"""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as error:
        return Finding(name, False, f"cannot write to {path}: {error.strerror}")
    return Finding(name, True, f"{path} is writable")


def check_broker(settings: Settings) -> Finding:
    """With STORYLOOM_QUEUE=redis: does Redis answer? (Its URL may hold a password: only
    the address is shown.)"""
    url = settings.redis_url.get_secret_value()
    where = url_address(url)
    try:
        import redis
    except ImportError:
        return Finding(
            "broker",
            False,
            "STORYLOOM_QUEUE=redis needs the Redis client: pip install 'storyloom[distributed]'",
        )
    shape = "redis://[:PASSWORD@]HOST:PORT/DB"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    except ValueError:
        return Finding("broker", False, f"STORYLOOM_REDIS_URL is not a Redis URL: use {shape}")
    try:
        client.ping()
    except redis.AuthenticationError:
        return Finding(
            "broker", False, f"Redis at {where} refused the password in STORYLOOM_REDIS_URL"
        )
    except redis.RedisError as error:
        reason = mask(str(error), secret_values(settings))[:200]
        fix = f"start Redis there, or fix STORYLOOM_REDIS_URL ({shape})"
        return Finding("broker", False, f"no answer from Redis at {where} ({reason}): {fix}")
    finally:
        client.close()
    detail = f"Redis at {where} answers"
    if settings.database_url.startswith("sqlite"):
        detail += "; note: a SQLite database is shared only by processes on this machine"
    return Finding("broker", True, detail)


async def check_database(settings: Settings) -> Finding:
    """Can we reach the database and bring its schema up to date?"""
    from storyloom.storage import upgrade_database

    try:
        await upgrade_database(settings.database_url)
    except Exception as error:  # any driver's error: report it, do not crash the doctor
        text = f"{settings.database_url.split('://')[0]}: {type(error).__name__}: {error}"
        return Finding("database", False, mask(text, secret_values(settings))[:300])
    return Finding("database", True, "reachable, schema up to date")


def check_secrets(settings: Settings) -> list[Finding]:
    """Which chat platforms have their tokens (shown as set/missing, never the value)."""
    discord = settings.discord_token is not None
    slack = settings.slack_bot_token is not None
    return [
        Finding("discord", True, "token set" if discord else "no STORYLOOM_DISCORD_TOKEN"),
        Finding("slack", True, "bot token set" if slack else "no STORYLOOM_SLACK_BOT_TOKEN"),
    ]


def check_budgets(settings: Settings) -> list[Finding]:
    """Each budget with what is used against it (storyloom/app/budgets.py)."""
    from storyloom.app import budgets

    return [
        Finding("identity", *budgets.identity_ram_report(settings)),
        Finding("stores", *budgets.disk_report(Path(settings.store_dir), settings.store_disk_gib)),
        Finding(
            "outputs", *budgets.disk_report(Path(settings.output_dir), settings.output_disk_gib)
        ),
        Finding("disk", *budgets.disk_free_report(settings)),
        Finding("caps", *budgets.caps_report(settings)),
    ]


async def diagnose() -> list[Finding]:
    """Run every check that the settings allow."""
    settings, findings = check_settings()
    if settings is None:
        return findings
    checks: list[Callable[[], Finding]] = [
        lambda: check_model(settings),
        lambda: check_gpu(settings),
        lambda: check_folder("store_dir", Path(settings.store_dir)),
        lambda: check_folder("output_dir", Path(settings.output_dir)),
    ]
    if settings.queue == "redis":
        checks.append(lambda: check_broker(settings))
    findings += [check() for check in checks]
    findings += check_budgets(settings)
    findings.append(await check_database(settings))
    findings += check_secrets(settings)
    return findings


def report(findings: list[Finding]) -> tuple[str, int]:
    """The printed report and the exit code (1 if any check failed)."""
    lines = [f"{'✓' if f.ok else '✗'} {f.check:<10} {f.detail}" for f in findings]
    failed = sum(not f.ok for f in findings)
    lines.append("all good" if not failed else f"{failed} problem(s) found")
    return os.linesep.join(lines), 1 if failed else 0
