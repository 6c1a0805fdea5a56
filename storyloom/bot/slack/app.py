"""Building the bolt AsyncApp: one client with the rate-limit retry handler, our listeners."""

from __future__ import annotations

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from storyloom.bot.slack.adapter import SlackStoryAdapter
from storyloom.bot.slack.front import EVENTS_PATH

# Slack allows about one message per second per channel; a busy thread gets 429s.
RATE_LIMIT_RETRIES = 3


def web_client(token: str | None = None, base_url: str | None = None) -> AsyncWebClient:
    """A Web API client that waits and retries when Slack answers 429 Too Many Requests."""
    client = (
        AsyncWebClient(token=token)
        if base_url is None
        else AsyncWebClient(token=token, base_url=base_url)
    )
    client.retry_handlers.append(
        AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)
    )
    return client


def build_app(
    adapter: SlackStoryAdapter,
    *,
    client: AsyncWebClient,
    signing_secret: str | None = None,
    oauth_settings: AsyncOAuthSettings | None = None,
) -> AsyncApp:
    """The bolt app with our listeners.

    With `oauth_settings` every workspace's bot token comes from the installation store
    (bolt copies `client`'s base URL and retry handlers into the per-request client);
    without, `client`'s token serves one workspace.
    """
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        oauth_settings=oauth_settings,
        # ack() answers the HTTP request; listeners go on in the same process afterwards
        process_before_response=False,
    )
    adapter.register(app)
    return app


async def serve_http(app: AsyncApp, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    """Serve the app's Events API (and OAuth install pages) on `host:port`, in this loop.

    Returns the runner (call `cleanup()` to stop); port 0 picks a free port.
    """
    runner = web.AppRunner(app.web_app(path=EVENTS_PATH, port=port))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
