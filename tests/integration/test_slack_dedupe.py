"""No duplicate Slack messages (issue: hardening, defect 17): when Slack stored a message but answered 500 (or the
answer never came), signoff finds the message by its metadata before posting again."""

from __future__ import annotations

from core.domain.approvals import RequestStatus
from testkit.support import MovableClock
from testkit.support.slack import ALICE, BOB, CHANNEL, TEAM_POLICY, slack_world


async def test_a_card_stored_before_a_500_is_posted_once(database_url: str) -> None:
    clock = MovableClock()
    async with slack_world(database_url, policy=TEAM_POLICY, clock=clock) as world:
        world.fake.fail("chat.postMessage", status=500, commit=True, times=1)
        assert await world.command(ALICE, "request rollout restart deployment/api -n prod") == 200
        await world.settle()
        for _ in range(3):  # the outbox's retry comes due
            clock.advance(seconds=30)
            await world.settle()
        cards = [m for m in world.fake.messages(CHANNEL) if "R-1" in str(m.get("blocks"))
                 and m.get("thread_ts") in (None, m["ts"])]
        assert len(cards) == 1, [m["ts"] for m in cards]
        assert cards[0]["metadata"]["event_type"] == "signoff_card"
        assert cards[0]["metadata"]["event_payload"]["request_id"] == "R-1"

        # The result in the thread: stored, then a 500, then found again instead of posted twice.
        world.fake.fail("chat.postMessage", status=500, commit=True, times=1)
        assert await world.click(BOB, "approve", "R-1") == 200
        await world.settle()
        for _ in range(3):
            clock.advance(seconds=30)
            await world.settle()
        assert (await world.app.service.get("R-1")).status is RequestStatus.succeeded
        replies = world.thread_texts("R-1")
        assert len([t for t in replies if "approved by" in t]) == 1, replies
        assert len([t for t in replies if "succeeded" in t]) == 1, replies
