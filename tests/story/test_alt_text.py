"""Alt text from the beats: every panel named, tags read as names, within Slack's limit."""

from __future__ import annotations

from datetime import UTC, datetime

from storyloom.story.alt_text import MAX_ALT_TEXT, alt_text
from storyloom.story.model import Beat, JobKind, JobStatus, RenderJob

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def job(kind: JobKind, *texts: str) -> RenderJob:
    beats = tuple(Beat(n, 1, n, "U1", "Ann", text, NOW) for n, text in enumerate(texts, start=1))
    return RenderJob(1, 1, kind, JobStatus.DONE, "U1", "Ann", NOW, NOW, beats=beats)


def test_a_page_is_described_panel_by_panel_with_names_not_tags() -> None:
    page = job(JobKind.PAGE, '[Mira] opens the door # Mira: "Who?"', "a gull")
    assert alt_text("Harbour", page) == (
        'Comic page of “Harbour”, 2 panels: 1. Mira opens the door: Mira: "Who?"; 2. a gull'
    )


def test_sheets_panels_and_clips_say_what_they_are() -> None:
    assert alt_text("H", job(JobKind.SHEET), "Mira") == "Character sheet of Mira for the comic “H”"
    assert alt_text("H", job(JobKind.PANEL, "a gull")).startswith("Panel 1 of the comic “H”")
    assert alt_text("H", job(JobKind.CLIP, "a", "b")).startswith("Animated clip of “H”, 2 panels")


def test_the_longest_page_fits_the_limit() -> None:
    longest = job(JobKind.PAGE, *["x" * 500] * 300)
    assert len(alt_text("T" * 100, longest)) == MAX_ALT_TEXT
