"""Slack retries a request that is not acknowledged within 3 s: we ack before working."""

from __future__ import annotations

import time

from .conftest import Slack


async def test_the_request_is_acknowledged_before_the_slow_work_is_done(slack: Slack) -> None:
    slack.fake.delay_s["chat.postMessage"] = 1.5  # the anchor post takes its time
    started = time.monotonic()
    assert await slack.send.command("new Slow Day") == 200
    answered_after = time.monotonic() - started
    assert slack.fake.named("chat.postMessage") == []  # the work had not finished
    await slack.fake.wait_for("chat.postEphemeral")
    assert answered_after < 1.0
    assert await slack.stories.latest_open("T1", "C1") is not None
