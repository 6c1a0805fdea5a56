"""A fast start: the CLI loads only what a command needs (`--help` no library at all,
`render` no database layer). Import graphs, not timings: the time itself is measured by
benchmarks/cli_start.py."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("sqlalchemy", "alembic", "aiosqlite", "torch", "diffusers", "discord", "slack_bolt")


def loaded_by(code: str) -> set[str]:
    """The top-level packages among HEAVY that running `code` imports (fresh process)."""
    listing = "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"{code}\nimport sys, json\n{listing}"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    ).stdout.splitlines()[-1]
    return set(json.loads(out)) & set(HEAVY)


def test_the_cli_and_its_help_load_no_heavy_library() -> None:
    code = (
        "from typer.testing import CliRunner\n"
        "from storyloom.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0"
    )
    assert loaded_by(code) == set()


def test_version_is_the_installed_packages_and_loads_no_heavy_library() -> None:
    code = (
        "from importlib.metadata import version\n"
        "from typer.testing import CliRunner\n"
        "from storyloom.cli import app\n"
        "result = CliRunner().invoke(app, ['--version'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert result.output == f\"storyloom {version('storyloom')}\\n\", result.output"
    )
    assert loaded_by(code) == set()


def test_render_loads_the_renderer_but_not_the_database_layer() -> None:
    found = loaded_by("import storyloom.cli, storyloom.app.render_story")
    assert {"torch", "diffusers"} <= found  # the probe sees what it imports
    assert not found & {"sqlalchemy", "alembic", "aiosqlite"}


def test_the_slack_port_opens_before_the_database_layer_or_bolt_load() -> None:
    # what `storyloom slack --http` imports before its port answers (bot/slack/start.py)
    code = "import storyloom.cli, storyloom.config, storyloom.ops.logs, storyloom.bot.slack.start"
    assert loaded_by(code) == set()
