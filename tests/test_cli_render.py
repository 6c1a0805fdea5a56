"""`storyloom render` through the real command line, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "lighthouse.toml"

GOOD = """
title = "Two friends"
seed = 3

[[characters]]
name = "Mira"
description = "a girl with red hair"

[[panels]]
scene = "[Mira] waves"
caption = 'Mira: "Hi!"'
"""


def storyloom(*args: str, cache: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "STORYLOOM_MODEL_CACHE_DIR": str(cache),
        "STORYLOOM_STORE_DIR": str(cwd / "stores"),
    }
    return subprocess.run(
        [sys.executable, "-m", "storyloom.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def test_render_writes_sheets_panels_pages_exports_and_a_manifest(
    tmp_path: Path, cache: Path
) -> None:
    out = tmp_path / "out"
    done = storyloom(
        "render",
        str(EXAMPLE),
        "--model",
        "tiny-sdxl",
        "--out",
        str(out),
        "--steps",
        "3",
        "--size",
        "64",
        "--export",
        "png,pdf,zip",
        "--layout",
        "classic",
        cache=cache,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "render.json").read_text())
    assert manifest["model"] == "tiny-sdxl"
    assert manifest["settings"]["steps"] == 3 and manifest["settings"]["width"] == 64
    assert len(manifest["panels"]) == 4
    assert set(manifest["characters"]) == {"Mira", "Old Tom"}
    for files in manifest["files"].values():
        assert all((out / f).is_file() for f in files)
    assert len(manifest["files"]["sheets"]) == 4  # K=2 identity panels per character
    assert {Path(f).name for f in manifest["files"]["exports"]} == {
        "story-page-01.png",
        "story.pdf",
        "story.zip",
    }
    story_md = zipfile.ZipFile(out / "story.zip").read("story.md").decode()
    assert "[Mira]" not in story_md.split("\n", 2)[0]  # the title line
    # the store of each character was saved under its key
    for character in manifest["characters"].values():
        assert (tmp_path / "stores" / f"{character['store_key']}.safetensors").is_file()
    assert not list(out.glob(".render-*"))  # no staging folder left behind


@pytest.mark.parametrize(
    "text,message",
    [
        (
            GOOD.replace("[Mira] waves", "[Zed] waves"),
            "panel 1: unknown character [Zed] (cast: Mira)",
        ),
        (GOOD.replace('scene = "[Mira] waves"', 'scene = "  "'), "panel 1: 'scene' is empty"),
        (GOOD.replace('title = "Two friends"', ""), "story: missing field 'title'"),
        (GOOD.split("[[panels]]")[0], "story: no panels"),
        (
            GOOD.replace("[Mira] waves", "[Mira] " * 1 + "[A] [B] [C] [D]")
            + "".join(f'\n[[characters]]\nname = "{n}"\ndescription = "x"\n' for n in "ABCD"),
            "panel 1: 5 characters; at most 4 per panel",
        ),
        (
            GOOD
            + "".join(f'\n[[characters]]\nname = "C{i}"\ndescription = "x"\n' for i in range(8)),
            "story: too many characters (9; at most 8)",
        ),
        ('style = "vaporwave"\n' + GOOD, "unknown style 'vaporwave'"),
        ("title = [", "not valid TOML"),
    ],
)
def test_a_bad_story_file_gets_one_clear_line_exit_2_and_nothing_written(
    tmp_path: Path, cache: Path, text: str, message: str
) -> None:
    story = tmp_path / "story.toml"
    story.write_text(text)
    out = tmp_path / "out"
    done = storyloom(
        "render", str(story), "--model", "tiny-sdxl", "--out", str(out), cache=cache, cwd=tmp_path
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()
    assert not (tmp_path / "stores").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--layout", "zigzag"], "unknown layout 'zigzag'"),
        (["--export", "png,gif"], "unknown export gif"),
    ],
)
def test_bad_options_are_refused_before_the_model_loads(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    cache = tmp_path / "empty-cache"
    done = storyloom(
        "render",
        str(EXAMPLE),
        "--model",
        "tiny-sdxl",
        "--out",
        str(out),
        *args,
        cache=cache,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and message in done.stderr
    assert not out.exists() and not (cache / "tiny-sdxl").exists()


def test_an_unknown_model_is_one_clear_line(tmp_path: Path, cache: Path) -> None:
    done = storyloom(
        "render",
        str(EXAMPLE),
        "--model",
        str(tmp_path / "nowhere"),
        "--out",
        str(tmp_path / "o"),
        cache=cache,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert str(tmp_path / "nowhere") in done.stderr


@pytest.mark.parametrize("motion", [False, True])
def test_clip_writes_an_h264_clip_within_the_budget(
    tmp_path: Path, cache: Path, motion: bool
) -> None:
    import imageio_ffmpeg

    out = tmp_path / "clip"
    args = [
        "clip",
        str(EXAMPLE),
        "--model",
        "tiny-sdxl",
        "--out",
        str(out),
        "--steps",
        "2",
        "--size",
        "64",
    ]
    done = storyloom(*args, *(["--motion"] if motion else []), cache=cache, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    clip = out / "story.mp4"
    assert clip.is_file() and clip.stat().st_size <= 10 * 1024 * 1024
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(clip)],
        capture_output=True,
        text=True,
    )
    assert "h264" in probe.stderr and "yuv420p" in probe.stderr
    assert f"clip: {clip}" in done.stdout


def test_clip_refuses_an_unknown_format_before_rendering(tmp_path: Path) -> None:
    done = storyloom(
        "clip",
        str(EXAMPLE),
        "--format",
        "avi",
        "--out",
        str(tmp_path / "o"),
        cache=tmp_path / "c",
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "unknown format avi" in done.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "c").exists()


def test_an_unknown_scheduler_is_one_clear_line(tmp_path: Path, cache: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "storyloom.cli", "render", str(EXAMPLE), "--model", "tiny-sdxl"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "STORYLOOM_MODEL_CACHE_DIR": str(cache),
            "STORYLOOM_SCHEDULER": "WarpDriveScheduler",
        },
        timeout=300,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "unknown scheduler 'WarpDriveScheduler'" in done.stderr


@pytest.mark.parametrize("made", ["a folder", "not UTF-8 text", "missing"])
def test_a_path_that_is_not_a_readable_story_file_is_one_sentence(
    tmp_path: Path, cache: Path, made: str
) -> None:
    path = tmp_path / "story.toml"
    if made == "a folder":
        path.mkdir()
    elif made == "not UTF-8 text":
        path.write_bytes(b"\xff\xfe\x00title")
    done = storyloom("render", str(path), "--model", "tiny-sdxl", cache=cache, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"storyloom: {path}")


def test_a_character_from_a_reference_picture_renders_and_a_missing_adapter_is_one_line(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    Image.new("RGB", (48, 64), "teal").save(tmp_path / "mira.jpg", format="JPEG")
    story = tmp_path / "story.toml"
    story.write_text(
        GOOD.replace(
            'description = "a girl with red hair"',
            ('description = "a girl with red hair"\nreference = "mira.jpg"'),
        )
    )
    args = ("render", str(story), "--model", "tiny-sd15", "--steps", "2", "--size", "64")
    monkeypatch.setenv("STORYLOOM_ADAPTER_MODEL", "tiny-ip-adapter")
    done = storyloom(*args, "--out", str(tmp_path / "out"), cache=cache, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((tmp_path / "out" / "panels").glob("*.png"))) == 1
    monkeypatch.setenv("STORYLOOM_ADAPTER_MODEL", str(tmp_path / "no-adapter"))
    done = storyloom(*args, "--out", str(tmp_path / "out2"), cache=cache, cwd=tmp_path)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("storyloom: the image adapter folder") and "does not exist" in line
