"""The import rules docs/architecture.md states hold in the code: dependencies point inward.

Imports are read with `ast` from the source (module level and inside functions alike), so
a lazy import counts as much as a top-level one.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "storyloom"

# Frameworks and infrastructure the story core must never see.
FRAMEWORKS = {
    "discord", "slack_bolt", "slack_sdk", "aiohttp", "sqlalchemy", "alembic", "aiosqlite",
    "asyncpg", "taskiq", "taskiq_redis", "redis", "torch", "diffusers", "transformers",
    "PIL", "moviepy", "jinja2", "typer", "prometheus_client",
}  # fmt: skip

# Bot modules that may touch the database directly, and why. Everything else in bot/
# reaches data through the story service. A new entry needs a reason as good as these.
BOT_DATA_ACCESS = {
    "bot/discord/run.py": "composition root: opens and migrates the database",
    "bot/slack/run.py": "composition root: opens and migrates the database",
    "bot/console.py": "composition root of `storyloom console`",
    "bot/slack/oauth.py": "slack_sdk's installation store is built on a SQLAlchemy engine",
    "bot/console_share.py": "share links live outside the story service (storage/share_links)",
    "bot/discord/sharing.py": "share links, as above",
    "bot/slack/share_commands.py": "share links, as above",
    "bot/library_setup.py": "composition: the character library's folder and repository",
}  # fmt: skip


def imports(path: Path) -> Iterator[str]:
    """Every absolute module name `path` imports."""
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def modules(part: str) -> list[Path]:
    """The source files of one part of the package (a sub-package or a module)."""
    where = PACKAGE / part
    return sorted(where.rglob("*.py")) if where.is_dir() else [where.with_suffix(".py")]


def parts_imported(path: Path) -> set[str]:
    """The parts of storyloom (`story`, `storage`, …) that `path` imports."""
    return {m.split(".")[1] for m in imports(path) if m.startswith("storyloom.")}


def roots_imported(path: Path) -> set[str]:
    """The top-level names of the outside packages that `path` imports."""
    return {m.split(".")[0] for m in imports(path) if not m.startswith("storyloom")}


def where(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def test_the_rules_read_real_imports() -> None:
    """The reader sees imports at all: storage uses SQLAlchemy, bots use discord.py."""
    assert any("sqlalchemy" in roots_imported(p) for p in modules("storage"))
    assert any("discord" in roots_imported(p) for p in modules("bot"))
    assert any("story" in parts_imported(p) for p in modules("storage"))


def test_the_story_core_imports_no_framework_and_no_other_part() -> None:
    found = {
        where(p): (roots_imported(p) & FRAMEWORKS) | (parts_imported(p) - {"story"})
        for p in modules("story")
    }
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize("outer", ["jobs", "bot", "ops", "reader", "app", "cli"])
def test_storage_imports_no_outer_part(outer: str) -> None:
    """Storage keeps rows for the core: it knows no job runner, chat, process or page."""
    assert [where(p) for p in modules("storage") if outer in parts_imported(p)] == []


@pytest.mark.parametrize("outer", ["storage", "bot", "jobs", "ops"])
def test_generation_imports_no_outer_part(outer: str) -> None:
    """Generation renders pictures from values: it knows no database, chat or job queue."""
    assert [where(p) for p in modules("generation") if outer in parts_imported(p)] == []


def test_generation_imports_no_database_or_chat_library() -> None:
    outer = {"sqlalchemy", "alembic", "discord", "slack_bolt", "slack_sdk", "taskiq", "redis"}
    found = {where(p): roots_imported(p) & outer for p in modules("generation")}
    assert {k: v for k, v in found.items() if v} == {}


def test_bots_reach_data_through_the_service() -> None:
    """Only the composition roots and the listed exceptions touch storage or SQLAlchemy."""
    touching = {
        where(p)
        for p in modules("bot")
        if "storage" in parts_imported(p) or "sqlalchemy" in roots_imported(p)
    }
    assert touching <= set(BOT_DATA_ACCESS), touching - set(BOT_DATA_ACCESS)
    present = {name for name in BOT_DATA_ACCESS if (PACKAGE / name).exists()}
    assert touching == present, f"no longer needed: {present - touching}"


def test_only_the_cli_imports_the_chat_adapters() -> None:
    """Nothing inside reaches out to an adapter: bots depend on the rest, never back."""
    importers = {
        where(p)
        for p in PACKAGE.rglob("*.py")
        if "bot" in parts_imported(p) and where(p).split("/")[0] != "bot"
    }
    assert importers == {"cli.py"}


def test_the_product_never_imports_the_testing_helpers() -> None:
    """storyloom/testing/ (local services, a checkpoint writer) is for tests and benchmarks."""
    importers = {
        where(p)
        for p in PACKAGE.rglob("*.py")
        if "testing" in parts_imported(p) and where(p).split("/")[0] != "testing"
    }
    assert importers == set()


def test_every_path_the_map_names_exists() -> None:
    """docs/architecture.md names files and folders; after a move, the map moves too. A
    path is read from the repository, the package, bot/ or tests/; a bare file name (in a
    row about one part) must exist somewhere in the package."""
    text = (ROOT / "docs" / "architecture.md").read_text("utf-8")
    named = {
        m
        for m in re.findall(r"`([\w./*-]+)`", text)
        if (m.endswith((".py", "/")) or "/" in m) and not m.startswith("/")  # not URL paths
    }
    assert len(named) > 20  # the reader found the map's paths
    bases = (ROOT, PACKAGE, PACKAGE / "bot", ROOT / "tests")
    missing = [
        name
        for name in sorted(named)
        if not (
            any(glob_exists(base / name) for base in bases)
            or ("/" not in name and any(PACKAGE.rglob(name)))
        )
    ]
    assert missing == []


def glob_exists(path: Path) -> bool:
    """Whether `path` (which may hold a `*`) names something that exists."""
    if "*" not in str(path):
        return path.exists()
    return any(path.parent.glob(path.name))
