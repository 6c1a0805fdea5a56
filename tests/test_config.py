"""Settings sources: the TOML file sets ordinary settings, never secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from storyloom.config import SECRET_FIELDS, load_settings


def test_a_token_in_the_config_file_is_ignored_with_a_warning_and_the_rest_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "storyloom.toml"
    config.write_text('steps = 12\ndiscord_token = "file-token"\nslack_bot_token = "xoxb-file"\n')
    monkeypatch.setenv("STORYLOOM_CONFIG_FILE", str(config))
    monkeypatch.delenv("STORYLOOM_DISCORD_TOKEN", raising=False)
    monkeypatch.delenv("STORYLOOM_SLACK_BOT_TOKEN", raising=False)
    with pytest.warns(UserWarning, match="discord_token ignored; secrets are read only"):
        settings = load_settings()
    assert settings.steps == 12
    assert settings.discord_token is None and settings.slack_bot_token is None

    monkeypatch.setenv("STORYLOOM_DISCORD_TOKEN", "env-token")
    with pytest.warns(UserWarning):
        from_env = load_settings()
    assert from_env.discord_token is not None
    assert from_env.discord_token.get_secret_value() == "env-token"


def test_every_secret_setting_is_known_as_one() -> None:
    assert {
        "discord_token",
        "slack_bot_token",
        "slack_signing_secret",
        "redis_url",
    } <= SECRET_FIELDS
    assert "model" not in SECRET_FIELDS
