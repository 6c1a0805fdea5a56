"""Log set-up for the processes storyloom runs: text for people or JSON lines for
collectors, on standard error, with every secret masked.

Masking happens on the finished line (message, arguments and traceback together), so a
secret is hidden whichever library logged it and however it got into the message.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from storyloom.config import Settings
from storyloom.ops.redact import mask, secret_values

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# LogRecord's own attributes; anything else on a record came from `extra=` and is kept.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class MaskingTextFormatter(logging.Formatter):
    """The usual one-line text format, secrets masked."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__(TEXT_FORMAT)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        """Format as text, then mask."""
        return mask(super().format(record), self.secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, exception, extras."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        """Format as a JSON line; every string in it is masked before encoding."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool) else str(value)
        masked = {k: mask(v, self.secrets) if isinstance(v, str) else v for k, v in entry.items()}
        return json.dumps(masked, ensure_ascii=False)


def formatter_for(settings: Settings) -> logging.Formatter:
    """The formatter the settings ask for, masking the settings' secrets."""
    secrets = secret_values(settings)
    if settings.log_format == "json":
        return JsonFormatter(secrets)
    return MaskingTextFormatter(secrets)


def setup_logging(
    settings: Settings, *, level: str | None = None, stream: TextIO | None = None
) -> None:
    """Send every log record (and warnings) through one masking handler on standard error.

    Called once by each CLI command that runs a process; replaces earlier handlers.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(settings))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level or settings.log_level)
    logging.captureWarnings(True)
