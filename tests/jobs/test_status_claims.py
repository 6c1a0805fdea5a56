"""The claim on a job's status message is a lease: one request posts the message; a claim
whose request died is taken over once its lease is out, by one courier only."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storyloom.generation.styles import STYLE_NAMES
from storyloom.jobs import status_refs
from storyloom.jobs.courier import Retry
from storyloom.storage import SqlDatabase
from storyloom.story import service
from storyloom.story.model import Actor
from storyloom.story.service import Deps, utc_now
from tests.job_rows import job_row
from tests.story.fakes import SentIds

ANN = Actor("w", "c", "t", "ann", "Ann")


async def _job(db: SqlDatabase) -> int:
    deps = Deps(db, SentIds(), STYLE_NAMES, "comic")
    await service.new_story(deps, ANN, "Harbour")
    await service.add_beat(deps, ANN, "a beat")
    return (await service.render(deps, ANN)).id


async def test_a_fresh_claim_is_waited_for_and_an_expired_one_taken_over_once(
    db: SqlDatabase,
) -> None:
    job_id = await _job(db)
    assert await status_refs.take_over(db, job_id) is None  # no claim: nothing to post
    assert await status_refs.claim(db, job_id)
    assert not await status_refs.claim(db, job_id)  # a second press
    wait = await status_refs.take_over(db, job_id, lease_s=30)
    assert wait is not None and 0 < wait <= 30  # its request may still post it

    async with db.writing() as uow:  # as if claimed a minute ago by a request that died
        old = status_refs.claim_text(utc_now() - timedelta(minutes=1))
        await uow.jobs.set_status_ref(job_id, old)
    taken = await asyncio.gather(*(status_refs.take_over(db, job_id, 30) for _ in range(4)))
    # one courier posts it; the others lost the race (None) or saw its fresh claim (a wait)
    assert taken.count(0.0) == 1
    assert all(t is None or t > 0 for t in taken if t != 0.0)
    await status_refs.posted(db, job_id, "discord:1/2/3")
    assert await status_refs.take_over(db, job_id, 0) is None  # it has its message now
    assert (await job_row(db, job_id)).status_ref == "discord:1/2/3"


def test_a_claim_written_before_claims_had_a_time_counts_as_expired() -> None:
    at = status_refs.claimed_at("claimed")
    assert at is not None and (utc_now() - at) > timedelta(days=1)
    assert status_refs.claimed_at("discord:1/2/3") is None
    assert status_refs.claimed_at(None) is None


async def test_a_lane_waiting_on_a_fresh_claim_looks_again_within_a_second_not_the_lease(
    db: SqlDatabase,
) -> None:
    job_id = await _job(db)
    assert await status_refs.claim(db, job_id)  # a request is posting the status message
    with pytest.raises(Retry) as waited:
        await status_refs.take_over_to_post(db, job_id, wait=True)
    # its post is usually done in a second or two (429s add their retry_after): a lane that
    # slept the whole 30 s lease made a throttled guild's results 30 s late
    assert 0 < waited.value.after_s <= status_refs.RECHECK_S < status_refs.CLAIM_LEASE_S
    await status_refs.posted(db, job_id, "discord:1/2/3")  # as the request does, meanwhile
    assert not await status_refs.take_over_to_post(db, job_id, wait=True)  # nothing to post
