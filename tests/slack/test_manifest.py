"""The app manifest in deploy/ asks for what the bot uses, at the paths it serves."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import yaml  # PyYAML comes with the render extra (transformers needs it)

from storyloom.bot.slack.app import EVENTS_PATH
from storyloom.bot.slack.oauth import BOT_SCOPES

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack-manifest.yml"


def test_the_manifest_matches_the_bot() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert manifest["oauth_config"]["scopes"]["bot"] == BOT_SCOPES
    command, library = manifest["features"]["slash_commands"]
    assert (command["command"], library["command"]) == ("/story", "/character")
    assert library["url"] == command["url"]
    settings = manifest["settings"]
    assert settings["event_subscriptions"]["bot_events"] == ["app_mention"]
    urls = [
        command["url"],
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    assert {urlparse(url).path for url in urls} == {EVENTS_PATH}
    (redirect,) = manifest["oauth_config"]["redirect_urls"]
    assert urlparse(redirect).path == "/slack/oauth_redirect"  # bolt's default, which we use
    assert settings["interactivity"]["is_enabled"] is True  # buttons, menus and the modal
