"""Shared helpers for the page, export and clip tests: small seeded panel images."""

from __future__ import annotations

import pytest

from storyloom.generation.layout import PagePanel

from .media import panel_image


@pytest.fixture
def story_panels() -> list[PagePanel]:
    """Four beats with tags, dialogue, narration and one missing image."""
    beats = [
        '[Mira] finds a brass key on the beach. Mira: "What is this?"',
        "[Bob] rows out to the lighthouse at dusk.",
        'Bob: "Careful with that." [Mira]: "Always."',
        "The lamp turns on by itself.",
    ]
    authors = ["alice", "bob", "alice", "carol"]
    return [
        PagePanel.from_beat(text, None if i == 3 else panel_image(i), author=authors[i])
        for i, text in enumerate(beats)
    ]
