"""`storyloom doctor` names every problem; the configuration reference cannot drift."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storyloom.config import Settings, reference_markdown
from storyloom.testing.devservices import REDIS_SERVER, RedisServer, free_port

ROOT = Path(__file__).parent.parent
# budgets any test machine's disk holds: at the defaults (40 + 10 GiB) the disk check
# failed whenever the machine had under 50 GiB free
SMALL_DISK = {"STORYLOOM_STORE_DISK_GIB": "1", "STORYLOOM_OUTPUT_DISK_GIB": "1"}


def doctor(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STORYLOOM_")}
    return subprocess.run(
        [sys.executable, "-m", "storyloom.cli", "doctor"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**clean, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), **SMALL_DISK, **env},
        timeout=120,
    )


def test_doctor_names_each_invalid_setting_and_exits_1(tmp_path: Path) -> None:
    done = doctor(tmp_path, STORYLOOM_STEPS="0", STORYLOOM_WIDTH="100", STORYLOOM_CSA_RATE="2")
    assert done.returncode == 1
    for name in ("STORYLOOM_STEPS", "STORYLOOM_WIDTH", "STORYLOOM_CSA_RATE"):
        assert f"✗ settings   {name}" in done.stdout
    assert "3 problem(s) found" in done.stdout


def test_doctor_names_each_broken_service_and_never_prints_secrets(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = doctor(
        tmp_path,
        STORYLOOM_DEVICE="cuda",
        STORYLOOM_MODEL=str(tmp_path / "missing-model.safetensors"),
        STORYLOOM_OUTPUT_DIR=str(blocker / "out"),
        STORYLOOM_DATABASE_URL="postgresql+asyncpg://u@127.0.0.1:1/db",
        STORYLOOM_DISCORD_TOKEN="super-secret-token",
    )
    assert done.returncode == 1
    out = done.stdout
    assert "✗ model" in out and "does not exist" in out
    assert "✗ gpu" in out and "STORYLOOM_DEVICE=cpu" in out
    assert "✗ output_dir" in out
    assert "✗ database" in out
    assert "✓ discord    token set" in out
    assert "super-secret-token" not in out + done.stderr
    assert "4 problem(s) found" in out


def test_doctor_passes_on_the_embedded_default_with_the_tiny_model(tmp_path: Path) -> None:
    done = doctor(tmp_path, STORYLOOM_MODEL="tiny-sdxl", STORYLOOM_DEVICE="cpu")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all good" in done.stdout
    assert (tmp_path / "storyloom-data" / "storyloom.db").is_file()  # schema applied


def test_the_configuration_reference_is_current_and_lists_every_setting() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == reference_markdown(), (
        "run: storyloom config-reference > docs/configuration.md"
    )
    for name, field in Settings.model_fields.items():
        assert f"`STORYLOOM_{name.upper()}`" in committed
        assert field.description, f"{name} has no description"


def test_doctor_names_an_unreachable_broker_without_printing_its_password(
    tmp_path: Path,
) -> None:
    done = doctor(
        tmp_path,
        STORYLOOM_MODEL="tiny-sdxl",
        STORYLOOM_DEVICE="cpu",
        STORYLOOM_QUEUE="redis",
        STORYLOOM_REDIS_URL=f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0",
    )
    assert done.returncode == 1
    broker = next(line for line in done.stdout.splitlines() if "broker" in line)
    assert broker.startswith("✗ broker     no answer from Redis at redis://127.0.0.1:")
    assert "start Redis there, or fix STORYLOOM_REDIS_URL" in broker
    assert "hunter2-secret" not in done.stdout + done.stderr
    assert "1 problem(s) found" in done.stdout


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS_SERVER is None and os.environ.get("STORYLOOM_TEST_REQUIRE_SERVICES") != "1":
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path / "redis", password="the-right-one")
    server.start()
    yield server
    server.stop()


def test_doctor_checks_the_broker_and_names_a_wrong_password(
    tmp_path: Path, redis: RedisServer
) -> None:
    tiny = {"STORYLOOM_MODEL": "tiny-sdxl", "STORYLOOM_DEVICE": "cpu", "STORYLOOM_QUEUE": "redis"}
    wrong = redis.url.replace("the-right-one", "a-wrong-one")
    refused = doctor(tmp_path, **tiny, STORYLOOM_REDIS_URL=wrong)
    assert refused.returncode == 1
    assert "✗ broker     Redis at redis://127.0.0.1:" in refused.stdout
    assert "refused the password in STORYLOOM_REDIS_URL" in refused.stdout
    assert "a-wrong-one" not in refused.stdout + refused.stderr

    answered = doctor(tmp_path, **tiny, STORYLOOM_REDIS_URL=redis.url)
    assert answered.returncode == 0, answered.stdout
    assert "✓ broker     Redis at redis://127.0.0.1:" in answered.stdout
    assert "SQLite database is shared only by processes on this machine" in answered.stdout
    assert "the-right-one" not in answered.stdout + answered.stderr


def test_doctor_shows_each_budget_and_names_the_one_that_is_exceeded(tmp_path: Path) -> None:
    job = tmp_path / "out" / "job-1"
    job.mkdir(parents=True)
    (job / "story.png").write_bytes(b"x" * 3 * 1024 * 1024)
    done = doctor(
        tmp_path,
        STORYLOOM_MODEL="tiny-sdxl",
        STORYLOOM_DEVICE="cpu",
        STORYLOOM_OUTPUT_DIR=str(tmp_path / "out"),
        STORYLOOM_OUTPUT_DISK_GIB="0.001",  # about 1 MiB: the 3 MiB result is over it
        STORYLOOM_WIDTH="1024",
        STORYLOOM_HEIGHT="1024",
        STORYLOOM_STEPS="30",
        STORYLOOM_STORE_DTYPE="float16",  # the exact setting (the default, float8, halves it)
    )
    out = done.stdout
    assert "✗ outputs    0.00 GiB of 0.00 GiB used" in out and "over budget" in out
    # real SDXL's store at 1024², 30 steps, as the accounting computes it (issue 15: 6.15 GiB)
    assert "✓ identity" in out and "one store is 6.15 GiB" in out
    assert "✓ stores     0.00 GiB of 1.00 GiB" in out  # SMALL_DISK's store budget
    assert "✓ caps       ≤ 32 panels per job" in out
    assert done.returncode == 1 and "1 problem(s) found" in out
