"""Countersignatures are race-safe (issue 20, item 2): two signoff processes on one PostgreSQL, reviewers
clicking Countersign at the same moment on different replicas (and one of them twice): each reviewer counts
once, `review_quorum` closes the review, and the timeline has one countersignature per reviewer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from core.domain.breakglass_review import ReviewStatus
from core.domain.events import EventType
from testkit.fakes.slack import FakeSlack
from testkit.postgres import postgres_database
from testkit.support import MovableClock
from testkit.support.policy import team_policy
from testkit.support.slack import ALICE, BOB, CAROL, MALLORY, RESTART_API, SlackWorld, slack_world

pytestmark = pytest.mark.postgres
POLICY = team_policy(slack={"alice": ALICE, "bob": BOB, "carol": CAROL, "mallory": MALLORY}) + """
[breakglass]
who = ["sre"]
after = "5m"
reviewers = ["sre"]
review_quorum = 2
"""


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_database()


def review_message(world: SlackWorld) -> dict[str, Any]:
    for message in world.fake.thread("C0OPS", world.card("R-1")["ts"]):
        if any(e.get("action_id") == "signoff_countersign" for b in message.get("blocks") or []
               for e in b.get("elements") or []):
            return message
    raise AssertionError("no review message in the thread")


async def test_concurrent_countersignatures_on_two_replicas_count_once_each(postgres_url: str) -> None:
    clock = MovableClock(datetime(2026, 3, 2, 3, 0, tzinfo=UTC))
    async with FakeSlack() as fake, contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(slack_world(postgres_url, fake=fake, policy=POLICY, clock=clock))
        second = await stack.enter_async_context(slack_world(postgres_url, fake=fake, policy=POLICY, clock=clock))
        assert await first.command(MALLORY, RESTART_API) == 200
        await first.settle()
        clock.advance(minutes=6)
        assert await second.command(ALICE, 'breakglass R-1 reason="api down, nobody answers"') == 200
        await asyncio.gather(first.settle(), second.settle())
        review = review_message(first)

        statuses = await asyncio.gather(
            first.click_button(BOB, review, "signoff_countersign", "R-1"),
            second.click_button(CAROL, review, "signoff_countersign", "R-1"),
            first.click_button(CAROL, review, "signoff_countersign", "R-1"),
        )
        assert statuses == [200, 200, 200]
        await asyncio.gather(first.settle(), second.settle())

        record = (await first.app.service.get("R-1")).breakglass
        assert record is not None and sorted(record.countersigned_by) == ["bob", "carol"]
        assert record.status is ReviewStatus.countersigned
        events = [e for e in await first.app.service.timeline("R-1") if e.type is EventType.countersigned]
        assert sorted(e.actor for e in events) == ["bob", "carol"]
        carol_heard = first.private_texts(CAROL)
        assert any("countersigned" in t for t in carol_heard) and any("already" in t for t in carol_heard)
