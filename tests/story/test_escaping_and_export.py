from __future__ import annotations

import tomllib
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from storyloom.story import service
from storyloom.story.escaping import escape_discord, escape_plain, escape_slack
from storyloom.story.export import StoryExport
from storyloom.story.model import Beat, Character, LockState, Story, StoryStatus, ThreadKey
from storyloom.story.service import Deps

from .conftest import member


def test_discord_mentions_and_markdown_are_defused() -> None:
    out = escape_discord("@everyone look **here** <@123> <#9> <@&7> @here")
    assert "@everyone" not in out and "@here" not in out
    assert "<@" not in out and "<#" not in out
    assert "**" not in out


def test_slack_broadcasts_and_links_cannot_form() -> None:
    out = escape_slack("<!channel> <@U123> a & b @channel <https://x|y>")
    assert "<" not in out and ">" not in out
    assert "&amp;" in out and "@channel" not in out


@given(st.text())
def test_slack_escaping_leaves_no_angle_brackets(text: str) -> None:
    out = escape_slack(text)
    assert "<" not in out and ">" not in out
    # Unescaping gives the text back (with broadcast words broken by a zero-width space).
    back = out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert back.replace("\u200b", "") == text.replace("\u200b", "")


def test_plain_escaping_shows_control_characters() -> None:
    assert escape_plain("a\x1b[31mb\nc") == "a\\u001b[31mb\nc"


@given(st.text(), st.text(), st.text())
def test_any_member_text_survives_the_story_file(title: str, description: str, author: str) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    story = Story(1, ThreadKey("w", "c", "t"), title, "comic", 7, "u", "Ann", StoryStatus.OPEN, now)
    character = Character(1, 1, "Mira", description, LockState.DRAFT, 3, "u", now, now)
    beat = Beat(1, 1, 1, "u", author, "[Mira] waves # hello", now)

    data = tomllib.loads(StoryExport(story, (character,), (beat,)).to_toml())

    assert data["title"] == title
    assert data["characters"][0]["description"] == description
    assert data["panels"][0]["author"] == author


async def test_export_is_a_story_file_with_tags_spelled_as_cast(deps: Deps) -> None:
    ann = member("Ann")
    await service.new_story(deps, ann, 'The "Last" Lighthouse')
    await service.cast_character(deps, ann, "Old Tom", "a keeper")
    await service.add_beat(deps, ann, '[old tom] sleeps # Old Tom: "zzz"')
    await service.add_beat(deps, member("Bob"), "# only a caption")

    data = tomllib.loads((await service.export(deps, ann)).to_toml())

    assert data["title"] == 'The "Last" Lighthouse'
    assert data["characters"] == [{"name": "Old Tom", "description": "a keeper", "seed": 1001}]
    assert data["panels"][0] == {
        "scene": "[Old Tom] sleeps", "caption": 'Old Tom: "zzz"', "author": "Ann"
    }  # fmt: skip
    assert data["panels"][1]["scene"] == "only a caption"


@given(st.text(alphabet="*_~` ab\n"))
def test_slack_markup_cannot_form_from_member_text(text: str) -> None:
    """Every mrkdwn marker sits between zero-width spaces, inside a "word", where Slack
    formats nothing (it has no backslash escape)."""
    out = escape_slack(text)
    for at, char in enumerate(out):
        if char in "*_~`":
            assert out[at - 1 : at] == "\u200b" and out[at + 1 : at + 2] == "\u200b", out
