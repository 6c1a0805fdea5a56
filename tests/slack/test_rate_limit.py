"""Slack answers 429 when a channel gets more than about one message a second."""

from __future__ import annotations

from .conftest import Slack


async def test_a_rate_limited_post_is_retried_by_the_sdk(slack: Slack) -> None:
    slack.fake.rate_limit_once.add("chat.postMessage")
    assert await slack.send.command("new Busy Channel") == 200
    answer = (await slack.fake.wait_for("chat.postEphemeral"))[0].params["text"]
    assert "started" in answer
    methods = [c.method for c in slack.fake.calls]
    assert methods.index("chat.postMessage (429)") < methods.index("chat.postMessage")
    assert await slack.stories.latest_open("T1", "C1") is not None
