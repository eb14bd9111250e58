"""An overdue break glass review on Slack (issue 20, item 2): after `review_within` the maintenance sweep
reminds the thread once, mentioning the reviewers' group and the risk level's `escalate_to` group."""

from __future__ import annotations

from datetime import UTC, datetime

from core.domain.breakglass_review import ReviewStatus
from testkit.support import MovableClock
from testkit.support.policy import team_policy
from testkit.support.slack import ALICE, BOB, CAROL, MALLORY, RESTART_API, slack_world

RULES = """
[risk.medium]
quorum = 1
approvers = ["sre"]

[risk.high]
quorum = 2
approvers = ["sre"]
escalate_after = "10m"
escalate_to = ["managers"]

[groups.leads]
slack = "S0LEADS"

[groups.managers]
slack = "S0MGR"

[breakglass]
who = ["sre"]
after = "5m"
review_within = "2h"
reviewers = ["leads"]
"""


async def test_an_overdue_review_is_reminded_once_and_escalated(sqlite_database_url: str) -> None:
    clock = MovableClock(datetime(2026, 3, 2, 3, 0, tzinfo=UTC))
    policy = team_policy(slack={"alice": ALICE, "bob": BOB, "carol": CAROL, "mallory": MALLORY}, rules=RULES)
    async with slack_world(sqlite_database_url, policy=policy, clock=clock) as world:
        assert await world.command(MALLORY, RESTART_API) == 200
        await world.settle()
        clock.advance(minutes=6)
        assert await world.command(ALICE, 'breakglass R-1 reason="api down, nobody answers"') == 200
        await world.settle()
        clock.advance(hours=1)
        assert (await world.app.maintenance.sweep()).get("reviews_overdue", 0) == 0  # not due yet
        clock.advance(hours=1, minutes=1)
        assert (await world.app.maintenance.sweep())["reviews_overdue"] == 1
        assert (await world.app.maintenance.sweep()).get("reviews_overdue", 0) == 0  # once
        await world.settle()
        [reminder] = [t for t in world.thread_texts("R-1") if "overdue for review" in t]
        assert "<!subteam^S0LEADS>" in reminder and "<!subteam^S0MGR>" in reminder, reminder
        assert "break glass by alice on R-1" in reminder
        record = (await world.app.service.get("R-1")).breakglass
        assert record is not None and record.status is ReviewStatus.overdue

        # A countersignature still closes an overdue review.
        assert await world.command(CAROL, "countersign R-1") == 200
        await world.settle()
        record = (await world.app.service.get("R-1")).breakglass
        assert record is not None and record.status is ReviewStatus.countersigned
