"""The operator docs cannot drift from the code: the README links them, their links
resolve, and every STORYLOOM_* variable and `storyloom …` command they name exists."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from storyloom.cli import app
from storyloom.config import Settings
from tests.ops.deployfiles import ROOT

DOCS = ["docs/deployment.md", "docs/troubleshooting.md"]


def test_the_readme_links_the_operator_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    for doc in DOCS:
        assert f"]({doc})" in readme
    assert "make demo" in readme and "make test" in readme  # the quick start stays


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_resolves(doc: str) -> None:
    path = ROOT / doc
    text = path.read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", text, re.M)
    }
    for target in re.findall(r"\]\(([^)]+)\)", text):
        if target.startswith("http"):
            continue
        file, _, anchor = target.partition("#")
        if file:
            assert (path.parent / file).is_file(), f"{doc}: {target}"
        elif anchor:
            assert anchor in headings, f"{doc}: no heading for #{anchor}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_setting_and_command_the_doc_names_exists(doc: str) -> None:
    text = (ROOT / doc).read_text()
    names = set(re.findall(r"STORYLOOM_([A-Z0-9_]+)", text))
    assert names
    for name in names:
        assert name.lower() in Settings.model_fields, f"{doc}: STORYLOOM_{name}"
    # in inline code (`storyloom doctor`) and in shell lines (.venv/bin/storyloom discord)
    commands = set(re.findall(r"(?:`|^|/)storyloom ([a-z][\w-]*)", text, re.M))
    assert commands
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, f"{doc}: `storyloom {command}` is not a command"
