"""The reader's parts on their own: alt text and credits from beats, the rate limit's
buckets, and story.html in the ZIP export (same template, its policy in a meta tag)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from markupsafe import escape
from pydantic import ValidationError

from storyloom.config import load_settings
from storyloom.generation.export import export_story
from storyloom.generation.pages.model import PagePanel, PageSpec
from storyloom.reader import view
from storyloom.reader.rate_limit import MAX_ADDRESSES, RateLimit
from tests.pages.media import panel_image


def test_alt_text_tells_scene_and_caption_with_tags_as_names() -> None:
    assert view.panel_alt('[Mira] and [Old  Tom] row # Mira: "Hold on!"') == (
        'Mira and Old Tom row. Mira: "Hold on!"'
    )
    assert view.panel_alt("# Only a caption.") == "Only a caption."
    assert view.panel_alt("   ") == "An empty panel."


def test_credits_group_each_members_beats_as_ranges_in_order_of_first_beat() -> None:
    authors = [(1, "Bo"), (2, "Ann"), (3, "Ann"), (4, "Ann"), (5, "Bo"), (7, "Ann")]
    assert view.credits(authors) == (view.Credit("Bo", "1, 5"), view.Credit("Ann", "2–4, 7"))


def test_pages_hold_their_panels_and_the_page_alt_tells_each() -> None:
    panels = [view.Panel(n, f"beat {n}", "Ann") for n in (1, 2, 3)]
    pages = view.pages(["a.png", "b.png"], panels, [range(0, 2), range(2, 3)])
    assert [p.alt for p in pages] == [
        "Page 1. Panel 1: beat 1 Panel 2: beat 2",
        "Page 2. Panel 3: beat 3",
    ]
    # an image the plan does not cover is still a page
    more = view.pages(["a.png", "b.png", "c.png"], panels, [range(0, 3)])
    assert [p.src for p in more] == ["a.png", "b.png", "c.png"] and more[2].alt == "Page 3."


def test_the_rate_limit_allows_a_burst_then_the_rate_per_address() -> None:
    now = [0.0]
    limit = RateLimit(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limit.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.take("a") == 1.0  # one a second: the next in a second
    assert limit.take("b") == 0.0  # another address has its own bucket
    now[0] = 1.0
    assert limit.take("a") == 0.0 and limit.take("a") > 0


def test_the_rate_limit_forgets_idle_addresses_to_stay_bounded() -> None:
    now = [0.0]
    limit = RateLimit(per_minute=60, burst=2, clock=lambda: now[0])
    for n in range(MAX_ADDRESSES):
        limit.take(f"10.0.{n // 256}.{n % 256}")
    now[0] = 10.0  # every bucket has refilled
    limit.take("192.0.2.1")
    assert len(limit._buckets) == 1


def test_the_zip_holds_story_html_reading_the_zip_pages_with_every_string_escaped(
    tmp_path: Path,
) -> None:
    beats = [f'[Mira] sees wave {n} # <i>Wave</i> "{n}"' for n in range(1, 12)]
    panels = [
        PagePanel.from_beat(b, panel_image(n), author="<b>Ann</b>", prompt=b)
        for n, b in enumerate(beats)
    ]
    spec = PageSpec(title="Tide </title><script>x()</script>", contributors=("<b>Ann</b>",))
    result = export_story(panels, spec, tmp_path, ("zip",), cast=[("Mira", "a <girl> & her boat")])
    assert result.zip is not None
    with zipfile.ZipFile(result.zip) as archive:
        html = archive.read("story.html").decode()
        names = set(archive.namelist())
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert srcs == ["pages/page-01.png", "pages/page-02.png"] and set(srcs) <= names
    assert '<meta http-equiv="Content-Security-Policy"' in html
    assert "default-src &#39;none&#39;" in html and "frame-ancestors" not in html
    for member_text in (spec.title, "<b>Ann</b>", "a <girl> & her boat", "<i>Wave</i>"):
        assert member_text not in html and str(escape(member_text)) in html
    assert "<script" not in html
    assert html.count("<li value=") == 11  # every panel told, under its page


def test_the_public_address_must_be_an_http_url() -> None:
    assert load_settings(public_base_url="https://c.example/comics").public_base_url
    for bad in ("comics.example.org", "ftp://c.example", "https://c.example/?a=1", "https:// x"):
        with pytest.raises(ValidationError):
            load_settings(public_base_url=bad)
