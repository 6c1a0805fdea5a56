"""`storyloom slack`'s start: Slack's port first, then the bot.

With `--http` the port is opened (`front.EarlyFront`) before anything heavy is imported, and
acknowledges Slack's requests while the bot is built; the bot's modules (storage, bolt, the
story service) are imported on a thread so the port keeps answering meanwhile, then the
bot runs as always (`run.run_slack`) and takes the port over. This module imports only
what the port needs.
"""

from __future__ import annotations

import logging

from pydantic import SecretStr

from storyloom.bot.background import imported
from storyloom.bot.slack.front import EarlyFront
from storyloom.config import Settings

log = logging.getLogger(__name__)


class MissingSlackSetting(Exception):
    """A token or secret the chosen mode needs is not set."""


def secret(value: SecretStr | None, name: str) -> str:
    """A required secret's value, or the setting to set."""
    if value is None:
        raise MissingSlackSetting(f"set STORYLOOM_{name.upper()} (see docs/slack.md)")
    return value.get_secret_value()


async def start_slack(settings: Settings, http: bool, port: int) -> None:
    """Run the Slack bot as `storyloom slack [--http]` does, until stopped."""
    front = None
    if http:
        front = EarlyFront(secret(settings.slack_signing_secret, "slack_signing_secret"))
        await front.start(port)
        log.info("Slack port %d open; the bot is starting", port)
    try:
        process = await imported("storyloom.ops.process")
        run = await imported("storyloom.bot.slack.run")
        oauth = None
        if http and settings.slack_client_id and settings.slack_client_secret:
            oauth = run.SlackOAuth(
                settings.slack_client_id, settings.slack_client_secret.get_secret_value()
            )
        await process.run_service(  # ops: /healthz and /metrics, a clean stop on SIGTERM
            settings,
            "slack",
            lambda ops: run.run_slack(settings, http, port, oauth, ops, front=front),
            ready_at_start=False,  # ready once its renderer is loaded (in the background)
        )
    finally:
        if front is not None:
            await front.close()
