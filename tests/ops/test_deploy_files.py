"""The Dockerfile and the compose file, checked without a Docker engine: they parse, they
build what docs/deployment.md promises, every STORYLOOM_* variable they set is a valid
setting, and every `storyloom …` command they run exists in the CLI."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from storyloom.cli import app
from storyloom.config import Settings, load_settings
from tests.ops.deployfiles import (
    ROOT,
    read_compose,
    read_dockerfile,
    strings,
    variables,
    with_defaults,
)

DOCKERFILE = read_dockerfile()
COMPOSE = read_compose()
SERVICES: dict[str, Any] = COMPOSE["services"]
OUR_IMAGES = {"storyloom-bot": "bot", "storyloom-worker": "worker"}  # compose image → target
LONG_RUNNING = ("redis", "bot", "worker", "postgres")


def cli_accepts(args: list[str]) -> tuple[bool, str]:
    """Whether `storyloom ARGS` names a real command with real options (`--help` stops it
    before it runs anything)."""
    result = CliRunner().invoke(app, [*args, "--help"])
    return result.exit_code == 0, result.output


def env_example() -> dict[str, str]:
    """Every VAR=value of .env.example, commented-out ones too (they are documentation)."""
    found: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def settings_set_by_the_files() -> list[tuple[str, str, str]]:
    """(where, variable, value) of every STORYLOOM_* the deployment files set."""
    found = [
        (f"Dockerfile:{stage.name}", key, value)
        for stage in DOCKERFILE.stages.values()
        for key, value in stage.env().items()
    ]
    for name, service in SERVICES.items():
        found += [(f"compose:{name}", k, str(v)) for k, v in service.get("environment", {}).items()]
    found += [(".env.example", k, v) for k, v in env_example().items()]
    return [(where, k, v) for where, k, v in found if k.startswith("STORYLOOM_")]


# --- Dockerfile ---------------------------------------------------------------------


def test_the_dockerfile_builds_a_slim_bot_and_a_cuda_worker_in_stages() -> None:
    stages = DOCKERFILE.stages
    assert set(stages) == {"bot-build", "bot", "worker-build", "worker"}
    assert DOCKERFILE.resolve(stages["bot"].base).endswith("-slim")
    cuda = DOCKERFILE.resolve(stages["worker"].base)
    assert cuda.startswith("nvidia/cuda:") and "-runtime-" in cuda
    assert DOCKERFILE.resolve(stages["worker-build"].base) == cuda
    assert "--from=bot-build" in " ".join(stages["bot"].all("COPY"))
    assert "--from=worker-build" in " ".join(stages["worker"].all("COPY"))

    bot_runs = " ".join(stages["bot-build"].all("RUN") + stages["bot"].all("RUN"))
    assert "torch" not in bot_runs and "render" not in bot_runs
    assert ".[discord,slack,distributed,postgres]" in bot_runs

    worker_runs = stages["worker-build"].all("RUN")
    torch_install = next(run for run in worker_runs if "TORCH_SPEC" in run)
    assert "--index-url" in torch_install
    assert "/whl/cu" in DOCKERFILE.args["TORCH_INDEX_URL"]  # a CUDA build of torch
    assert DOCKERFILE.args["TORCH_SPEC"] == "torch>=2.6,<3"  # the render extra's range
    render_install = next(run for run in worker_runs if ".[render" in run)
    assert worker_runs.index(torch_install) < worker_runs.index(render_install)


@pytest.mark.parametrize("stage", ["bot", "worker"])
def test_each_image_runs_as_a_non_root_user_with_its_state_in_volumes(stage: str) -> None:
    found = DOCKERFILE.stages[stage]
    keywords = [keyword for keyword, _ in found.instructions]
    user = found.all("USER")[-1]
    assert user not in ("root", "0") and not user.startswith("0:")
    last_run = max(i for i, keyword in enumerate(keywords) if keyword == "RUN")
    assert keywords.index("USER") > last_run  # root only while installing
    env = found.env()
    assert "/data" in found.volumes()
    for name in ("STORYLOOM_STORE_DIR", "STORYLOOM_OUTPUT_DIR"):
        assert env[name].startswith("/data/")
    assert env["STORYLOOM_DATABASE_URL"].endswith(":////data/storyloom.db")
    assert env["HF_HOME"].startswith("/models/")
    assert env["STORYLOOM_MODEL_CACHE_DIR"].startswith("/models/")
    if stage == "worker":  # the model cache is worth keeping across containers
        assert "/models" in found.volumes()


def test_every_copied_path_exists_and_is_not_left_out_of_the_build_context() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for required in (".git", ".venv", ".env", "storyloom-data", "storyloom-out"):
        assert required in ignored
    for stage in DOCKERFILE.stages.values():
        for copy in stage.all("COPY"):
            if copy.startswith("--from="):
                continue
            *sources, _target = copy.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                assert source not in ignored, f"COPY {source}: .dockerignore leaves it out"


# --- compose ------------------------------------------------------------------------


def test_compose_runs_a_bot_workers_and_redis_with_health_checks_and_restarts() -> None:
    assert set(SERVICES) == {"redis", "migrate", "bot", "worker", "postgres"}
    assert SERVICES["postgres"]["profiles"] == ["postgres"]  # optional
    for name in ("redis", "migrate", "bot", "worker"):
        assert "profiles" not in SERVICES[name]
    for name in LONG_RUNNING:
        assert SERVICES[name]["restart"] in ("unless-stopped", "always", "on-failure"), name
        assert SERVICES[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    for name in ("bot", "worker"):
        needs = SERVICES[name]["depends_on"]
        assert needs["redis"]["condition"] == "service_healthy"
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        env = SERVICES[name]["environment"]
        assert env["STORYLOOM_QUEUE"] == "redis"
        assert "@redis:6379/" in env["STORYLOOM_REDIS_URL"]  # the compose service
        assert "data:/data" in SERVICES[name]["volumes"]  # one database for all
    # workers never migrate: a one-shot service does it, then exits for good
    assert SERVICES["migrate"]["command"] == ["db", "upgrade"]
    assert SERVICES["migrate"]["restart"] == "no"
    assert "data:/data" in SERVICES["migrate"]["volumes"]


def test_compose_gives_each_worker_a_gpu_and_time_to_hand_back_its_job() -> None:
    worker = SERVICES["worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "models:/models" in worker["volumes"]
    grace = float(worker["environment"]["STORYLOOM_STOP_GRACE_S"])
    docker_grace = float(worker["stop_grace_period"].removesuffix("s"))
    assert docker_grace > grace + 10  # else Docker kills it while handing back


def test_compose_builds_its_images_from_the_dockerfile_targets() -> None:
    for name, service in SERVICES.items():
        if service["image"] in OUR_IMAGES:
            assert service["build"]["target"] == OUR_IMAGES[service["image"]], name
            assert service["build"]["target"] in DOCKERFILE.stages
        else:
            assert "build" not in service, name


def test_every_variable_compose_reads_is_a_setting_or_documented_in_env_example() -> None:
    documented = env_example()
    used = {name for text in strings(COMPOSE) for name in variables(text)}
    assert used, "the compose file reads no variables: the test reads it wrong"
    for name in used:
        if name.startswith("STORYLOOM_"):
            assert name.removeprefix("STORYLOOM_").lower() in Settings.model_fields, name
        else:
            assert name in documented, f"{name} is not explained in .env.example"
    assert documented["REDIS_PASSWORD"]  # the one the compose file requires


# --- both ---------------------------------------------------------------------------


def test_every_storyloom_variable_the_files_set_is_a_valid_setting() -> None:
    found = settings_set_by_the_files()
    assert len(found) > 20, "fewer settings than the files hold: the test reads them wrong"
    for where, name, value in found:
        field = name.removeprefix("STORYLOOM_").lower()
        assert field in Settings.model_fields, f"{where}: {name} is not a setting"
        if not value or value.startswith("xox") or value.startswith("xapp"):
            continue  # placeholders of tokens in .env.example
        try:
            load_settings(**{field: with_defaults(value)})
        except ValidationError as error:
            pytest.fail(f"{where}: {name}={value} is not valid: {error}")


def storyloom_commands() -> list[tuple[str, list[str]]]:
    """(where, arguments) of every `storyloom …` the Dockerfile and compose file run."""
    found: list[tuple[str, list[str]]] = []
    for stage in ("bot", "worker"):
        command = DOCKERFILE.command(stage)
        assert command[0] == "storyloom"
        found += [(f"Dockerfile:{stage} CMD", command[1:])]
        health = DOCKERFILE.healthcheck(stage)
        assert health[0] == "storyloom"
        found += [(f"Dockerfile:{stage} HEALTHCHECK", health[1:])]
    for name, service in SERVICES.items():
        if service["image"] in OUR_IMAGES:  # ENTRYPOINT ["storyloom"]: command = arguments
            found.append((f"compose:{name}", [with_defaults(a) for a in service["command"]]))
        test = service.get("healthcheck", {}).get("test", [])
        if test[1:2] == ["storyloom"]:
            found.append((f"compose:{name} healthcheck", test[2:]))
    return found


def test_every_storyloom_command_the_files_run_exists_in_the_cli() -> None:
    found = storyloom_commands()
    assert {tuple(args) for _, args in found} >= {("discord",), ("worker",), ("db", "upgrade")}
    for where, args in found:
        accepted, output = cli_accepts(args)
        assert accepted, f"{where}: `storyloom {' '.join(args)}` is not a command:\n{output}"


def test_the_command_check_rejects_what_the_cli_does_not_have() -> None:
    assert not cli_accepts(["wrker"])[0]
    assert not cli_accepts(["db", "upgrade", "--no-such-option"])[0]
    assert cli_accepts(["slack", "--http", "--port", "3000"])[0]


@pytest.mark.parametrize("stage", ["bot", "worker"])
def test_each_image_and_ci_install_the_fonts_of_the_lettering_chain(stage: str) -> None:
    """Pages in any script need the Noto families lettering.py falls back to."""
    runs = " ".join(DOCKERFILE.stages[stage].all("RUN"))
    ci = (ROOT / ".ci" / "run").read_text()
    for package in ("fonts-noto-core", "fonts-noto-cjk", "fonts-symbola"):
        assert package in runs and package in ci
