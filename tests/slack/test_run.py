"""`storyloom slack` refuses to start without the tokens its mode needs, and says which."""

from __future__ import annotations

from pathlib import Path

import pytest

from storyloom.bot.slack.run import MissingSlackSetting, run_slack
from storyloom.config import Settings


@pytest.mark.parametrize(
    ("http", "missing"),
    [(False, "STORYLOOM_SLACK_BOT_TOKEN"), (True, "STORYLOOM_SLACK_BOT_TOKEN")],
)
async def test_a_missing_token_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http: bool, missing: str
) -> None:
    for name in ("BOT_TOKEN", "APP_TOKEN", "SIGNING_SECRET"):
        monkeypatch.delenv(f"STORYLOOM_SLACK_{name}", raising=False)
    settings = Settings.model_validate({"database_url": f"sqlite+aiosqlite:///{tmp_path / 's.db'}"})
    with pytest.raises(MissingSlackSetting, match=missing):
        await run_slack(settings, http=http, port=0)


async def test_socket_mode_needs_the_app_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORYLOOM_SLACK_APP_TOKEN", raising=False)
    settings = Settings.model_validate(
        {
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 's.db'}",
            "slack_bot_token": "xoxb-test",
            "output_dir": tmp_path / "out",
        }
    )
    with pytest.raises(MissingSlackSetting, match="STORYLOOM_SLACK_APP_TOKEN"):
        await run_slack(settings, http=False, port=0)
