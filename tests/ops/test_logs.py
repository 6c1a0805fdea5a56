"""Logs come as text or JSON lines, and no secret of the settings survives into a line,
whether it is in the message, its arguments, a traceback or an `extra` field."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from storyloom.config import load_settings
from storyloom.ops.logs import setup_logging
from storyloom.ops.redact import MASK, secret_values

TOKEN = "MTIz.discord-token.abc"
REDIS_PASSWORD = "p@ss:word"  # percent-encoded in the URL, sent decoded
DB_PASSWORD = "db-secret-pw"


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def secret_settings(log_format: str):
    return load_settings(
        discord_token=TOKEN,
        slack_bot_token="xoxb-slack-secret",
        redis_url="redis://:p%40ss%3Aword@cache:6379/0",
        database_url=f"postgresql+asyncpg://storyloom:{DB_PASSWORD}@db/storyloom",
        log_format=log_format,
    )


def log_everything(stream: io.StringIO, log_format: str) -> str:
    setup_logging(secret_settings(log_format), stream=stream)
    log = logging.getLogger("storyloom.test")
    log.info("connecting with token %s", TOKEN)
    log.warning("redis password %s and %s", REDIS_PASSWORD, "p%40ss%3Aword")
    try:
        raise ConnectionError(f"login failed for postgresql://storyloom:{DB_PASSWORD}@db")
    except ConnectionError:
        log.exception("database down")
    log.info("slack", extra={"header": "Bearer xoxb-slack-secret", "job_id": 7})
    return stream.getvalue()


def test_every_secret_is_masked_in_text_logs() -> None:
    out = log_everything(io.StringIO(), "text")
    for secret in (TOKEN, REDIS_PASSWORD, "p%40ss%3Aword", DB_PASSWORD, "xoxb-slack-secret"):
        assert secret not in out
    assert f"connecting with token {MASK}" in out
    assert "ConnectionError: login failed" in out  # the traceback is kept, masked
    assert " INFO storyloom.test: connecting" in out


def test_json_logs_are_one_object_per_line_with_every_secret_masked() -> None:
    out = log_everything(io.StringIO(), "json")
    for secret in (TOKEN, REDIS_PASSWORD, "p%40ss%3Aword", DB_PASSWORD, "xoxb-slack-secret"):
        assert secret not in out
    entries = [json.loads(line) for line in out.splitlines()]
    assert [e["level"] for e in entries] == ["INFO", "WARNING", "ERROR", "INFO"]
    assert entries[0]["message"] == f"connecting with token {MASK}"
    assert entries[0]["logger"] == "storyloom.test"
    assert "ConnectionError" in entries[2]["exception"]
    assert entries[3]["header"] == f"Bearer {MASK}" and entries[3]["job_id"] == 7


def test_the_secrets_are_the_secret_fields_and_url_passwords() -> None:
    found = set(secret_values(secret_settings("text")))
    redis_url = "redis://:p%40ss%3Aword@cache:6379/0"  # a SecretStr field: secret whole
    assert found == {
        TOKEN, "xoxb-slack-secret", redis_url, "p%40ss%3Aword", REDIS_PASSWORD, DB_PASSWORD
    }  # fmt: skip


def test_setting_up_twice_leaves_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(log_format="json", log_level="WARNING")
    setup_logging(settings)
    setup_logging(settings)
    logging.getLogger("x").info("hidden: below the level")
    logging.getLogger("x").warning("shown once")
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["shown once"]
