"""The console: the bots' commands in a terminal, fed line by line."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from storyloom.bot.console import run_console
from storyloom.config import Settings

SESSION = """\
/story new The Last Lighthouse
/story cast Mira: a girl with short red hair
/story add [Mira] walks on a beach # The light had been out for days.
/as Tom
/story add [Mira] climbs the stairs # Mira: "Anyone up there?"
/story edit 1 stolen beat
/story add [Zed] hides
/story move 1
/story frobnicate
/hello
/story list
/story render
"""


def settings(tmp_path: Path, models: Path) -> Settings:
    return Settings(
        model="tiny-sdxl",
        model_cache_dir=models,
        width=64,
        height=64,
        steps=2,
        store_dir=tmp_path / "stores",
        output_dir=tmp_path / "out",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'console.db'}",
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


async def test_a_session_adds_beats_enforces_rules_and_renders_a_page(
    tmp_path: Path, models: Path
) -> None:
    out = io.StringIO()
    code = await run_console(settings(tmp_path, models), io.StringIO(SESSION), out)
    text = out.getvalue()
    assert code == 0
    assert "beat 1 added by host" in text and "beat 2 added by Tom" in text
    assert "✗ Beat 1 is host's" in text  # Tom may not edit host's beat
    assert re.search(r"✗ .*Zed.*Mira", text)  # the error lists the cast
    assert "usage: /story move BEAT TO" in text
    assert "usage: /story new|add" in text
    assert "unknown command; type /help" in text
    assert "  1. [Mira] walks on a beach" in text  # the edit was refused: text unchanged
    page = re.search(r"^\s+(\S+story-page-01\.png)$", text, re.MULTILINE)
    assert page is not None and Path(page.group(1)).is_file()


async def test_a_story_persists_between_console_sessions(tmp_path: Path, models: Path) -> None:
    first = io.StringIO()
    await run_console(
        settings(tmp_path, models), io.StringIO("/story new Kept\n/story add a beach\n"), first
    )
    second = io.StringIO()
    await run_console(settings(tmp_path, models), io.StringIO("/story list\n/quit\n"), second)
    assert "1. a beach — host" in second.getvalue()


def test_storyloom_console_reads_commands_piped_into_it(tmp_path: Path, models: Path) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "STORYLOOM_MODEL_CACHE_DIR": str(models),
        "STORYLOOM_STEPS": "2",
        "STORYLOOM_WIDTH": "64",
        "STORYLOOM_HEIGHT": "64",
        "STORYLOOM_STORE_DIR": str(tmp_path / "stores"),
    }
    script = "/story new Piped\n/story cast Mira: a girl\n/story add [Mira] waves\n/story render\n"
    done = subprocess.run(
        [sys.executable, "-m", "storyloom.cli", "console", "--model", "tiny-sdxl"],
        input=script,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "render job #1 queued" in done.stdout
    assert "job #1 page done:" in done.stdout
    assert list((tmp_path / "storyloom-out" / "job-1").glob("story-page-01.png"))
    assert (tmp_path / "storyloom-data" / "storyloom.db").is_file()


async def test_waiting_jobs_show_their_place_in_line_and_a_member_over_the_cap_is_refused(
    tmp_path: Path, models: Path
) -> None:
    session = "/story new Queue\n/story add A quiet harbour\n" + "/story render\n" * 5
    out = io.StringIO()
    assert await run_console(settings(tmp_path, models), io.StringIO(session), out) == 0
    text = out.getvalue()
    # the worker may or may not have started job 1 before the next request: either way no
    # more than 3 of host's jobs ever wait at once, and the rest are refused in one line
    queued = re.findall(r"render job #(\d+) queued(?:, (\d+) in line)?", text)
    assert len(queued) in (3, 4)
    places = [int(place) for _, place in queued[1:]]  # job 1 may already be running
    assert all(1 <= place <= 3 for place in places) and len(places) == len(queued) - 1
    assert text.count("✗ You already have 3 jobs waiting") == 5 - len(queued)
    assert len(re.findall(r"job #\d+ page done", text)) == len(queued)


async def test_the_operator_sets_the_cap_on_waiting_jobs(tmp_path: Path, models: Path) -> None:
    session = "/story new Queue\n/story add A quiet harbour\n" + "/story render\n" * 3
    out = io.StringIO()
    capped = settings(tmp_path, models).model_copy(update={"max_waiting_per_member": 1})
    assert await run_console(capped, io.StringIO(session), out) == 0
    text = out.getvalue()
    queued = len(re.findall(r"render job #\d+ queued", text))
    # job 1 may already be running when the second request comes: at most one waits
    assert queued in (1, 2)
    assert text.count("(the limit is 1)") == 3 - queued


async def test_the_host_keeps_the_settings_and_reads_the_audit(
    tmp_path: Path, models: Path
) -> None:
    session = "\n".join(
        [
            "/story new Harbour",
            "/story settings add-word kraken",
            "/story settings safety sideways",
            "/as Tom",
            "/story settings safety off",
            "/story add the Kr4k3n wakes",
            "/story add gulls circle",
            "/story audit",
            "/as host",
            "/story settings",
            "/story audit 3",
        ]
    )
    out = io.StringIO()
    assert await run_console(settings(tmp_path, models), io.StringIO(session), out) == 0
    text = out.getvalue()
    assert "add-word set to kraken" in text
    assert "✗ Safety is one of: block, blur, off." in text
    assert "✗ Only this server's moderators can change its settings." in text
    assert "✗ That text can't be used here: it matches this server's word list." in text
    assert "✗ Only this server's moderators can read its audit trail." in text
    assert "safety: block" in text and "added words: 1 (kraken)" in text
    tail = text.splitlines()[-3:]
    assert [line.split(" · ")[2].split(":")[0] for line in tail] == [
        "beat.added",
        "safety.text_refused",
        "settings.changed",
    ]


def readme_block(after: str) -> str:
    """The first plain ``` block of README.md after the heading `after`, as written."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    lines = readme[readme.index(after) :].splitlines(keepends=True)
    body: list[str] = []
    fence: str | None = None  # the info string of the block we are in
    for line in lines:
        if line.startswith("```"):
            if fence is None:
                fence = line[3:].strip()
                continue
            if fence == "":
                return "".join(body)
            fence, body = None, []
        elif fence == "":
            body.append(line)
    raise AssertionError(f"no plain block after {after!r}")


async def test_the_readmes_console_example_runs_as_pasted_comments_and_all(
    tmp_path: Path, models: Path
) -> None:
    example = readme_block("## The console")
    assert "  # " in example  # the inline comments are part of what is pasted
    out = io.StringIO()
    assert await run_console(settings(tmp_path, models), io.StringIO(example), out) == 0
    text = out.getvalue()
    assert "✗" not in text and "usage:" not in text and "unknown command" not in text, text
    assert "you are now Tom\n" in text  # not a member called "Tom   # speak as…"
    assert "beat 2 added by Tom" in text
    assert "sheet job #1 queued" in text and "render job #2 queued" in text


async def test_look_takes_the_slack_form_name_then_lock_or_reroll(
    tmp_path: Path, models: Path
) -> None:
    session = (
        "/story new Looks\n/story cast Mira Rose: a girl\n"
        "/story look Mira Rose lock\n/story look Mira Rose reroll\n"
    )
    out = io.StringIO()
    assert await run_console(settings(tmp_path, models), io.StringIO(session), out) == 0
    text = out.getvalue()
    assert "✗" not in text, text
    assert "Mira Rose: no sheet yet (look NAME draws one); sheet job #1 queued" in text
    assert re.search(r"Mira Rose: .*; sheet job #2 queued", text)
