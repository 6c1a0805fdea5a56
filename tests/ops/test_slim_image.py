"""The bot image has no torch (nor diffusers, transformers…): what it runs must import
without them, and `storyloom doctor` there leaves the model and GPU to the workers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storyloom.testing.devservices import REDIS_SERVER, RedisServer
from tests.ops.slim import import_without_render_packages, run_cli_without_render_packages
from tests.test_doctor import SMALL_DISK

# What a bot with STORYLOOM_QUEUE=redis, `storyloom db upgrade`, `storyloom health` and
# `storyloom doctor` load.
SLIM_MODULES = [
    "storyloom.cli",
    "storyloom.config",
    "storyloom.app.doctor",
    "storyloom.storage",
    "storyloom.app.db_commands",
    "storyloom.jobs.broker",
    "storyloom.jobs.admission",
    "storyloom.jobs.recovery",
    "storyloom.ops.gpu",
    "storyloom.ops.health_client",
    "storyloom.ops.job_counts",
    "storyloom.ops.logs",
    "storyloom.ops.metrics",
    "storyloom.ops.process",
    "storyloom.ops.redact",
    "storyloom.ops.server",
    "storyloom.ops.shutdown",
    # the chat bots: jobs through jobs.runtime and jobs.events, never jobs.local
    "storyloom.bot.discord.start",
    "storyloom.bot.discord.run",
    "storyloom.bot.slack.run",
]


@pytest.fixture(scope="module")
def imported() -> dict[str, str | None]:
    return import_without_render_packages(SLIM_MODULES)


@pytest.mark.parametrize("module", SLIM_MODULES)
def test_what_the_bot_image_runs_imports_without_torch(
    imported: dict[str, str | None], module: str
) -> None:
    assert imported[module] is None, imported[module]


def test_the_blocker_does_refuse_torch() -> None:
    found = import_without_render_packages(["storyloom.generation.renderer"])
    failure = found["storyloom.generation.renderer"]
    assert failure is not None and "torch" in failure


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS_SERVER is None and os.environ.get("STORYLOOM_TEST_REQUIRE_SERVICES") != "1":
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path / "redis", password="slim-secret")
    server.start()
    yield server
    server.stop()


def slim_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STORYLOOM_")}
    return {**clean, "HF_HUB_OFFLINE": "1", **SMALL_DISK, **settings}


def test_doctor_in_the_slim_image_leaves_model_and_gpu_to_the_workers(
    tmp_path: Path, redis: RedisServer
) -> None:
    env = slim_env(tmp_path, STORYLOOM_QUEUE="redis", STORYLOOM_REDIS_URL=redis.url)
    done = run_cli_without_render_packages(["doctor"], tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ model      not checked here (no torch" in done.stdout
    assert "✓ gpu        not checked here (no torch" in done.stdout
    assert "✓ broker     Redis at redis://127.0.0.1:" in done.stdout
    assert "slim-secret" not in done.stdout + done.stderr
    assert "all good" in done.stdout


def test_doctor_in_the_slim_image_says_embedded_mode_needs_the_render_extra(
    tmp_path: Path,
) -> None:
    done = run_cli_without_render_packages(["doctor"], tmp_path, slim_env(tmp_path))
    assert done.returncode == 1
    for check in ("model", "gpu"):
        assert f"✗ {check:<10} torch and diffusers are not installed" in done.stdout
    assert "STORYLOOM_QUEUE=redis" in done.stdout
    assert "2 problem(s) found" in done.stdout
