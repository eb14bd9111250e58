"""A raised risk keeps only the signatures its new rule admits, end to end through Slack (issue: hardening II,
defect 2): signed requests into Bolt, the fake Slack Web API, the sandbox cluster.

medium = 1 of sre, high = 2 of leads. alice asks for a medium scale; before it runs, the floor rises to high,
once because the deployment was scaled to 10 outside signoff (the scale is now a drop by more than half), once
because the cluster could not be read (the worst case). bob (sre, not a lead) had signed at medium: his
signature no longer counts, the card says so, and carol (a lead) alone does not make it run."""

from __future__ import annotations

import pytest

from core.domain.approvals import RequestStatus
from core.domain.events import EventType
from core.domain.policy import Risk
from testkit.support.policy import team_policy
from testkit.support.slack import ALICE, BOB, CAROL, card_text, slack_world

DAVE = "U0DAVE"
RULES = """
[risk.medium]
quorum = 1
approvers = ["sre"]

[risk.high]
quorum = 2
approvers = ["leads"]

[playbooks]
quorum = 1
approvers = ["leads"]
"""
POLICY = team_policy(slack={"alice": ALICE, "bob": BOB, "carol": CAROL, "dave": DAVE},
                     groups={"dave": ("leads",)}, rules=RULES)


@pytest.mark.parametrize("raised_by", ["changed_fact", "failed_read"])
async def test_a_raised_risk_counts_only_signatures_of_people_the_new_level_admits(
        sqlite_database_url: str, raised_by: str) -> None:
    async with slack_world(sqlite_database_url, policy=POLICY) as world:
        sandbox = world.app.sandbox
        assert sandbox is not None
        assert await world.command(ALICE, "request scale deployment/api --replicas=2 -n prod") == 200
        await world.settle()
        request = await world.app.service.get("R-1")
        assert request.risk is Risk.medium and request.quorum == 1

        if raised_by == "changed_fact":
            deployment = sandbox.get("Deployment", "prod", "api")
            assert deployment is not None
            deployment["spec"]["replicas"] = 10
            sandbox.put(deployment)
        else:
            sandbox.inject("GET", r"/deployments/api$", status=503, reason="ServiceUnavailable", times=None)
        assert await world.click(BOB, "approve", "R-1") == 200
        await world.settle()
        sandbox.clear_faults()

        back = await world.app.service.get("R-1")
        assert back.status is RequestStatus.pending
        assert back.risk is Risk.high and back.quorum == 2
        assert back.signers == ("bob",) and back.signed == 0
        shown = card_text(world.card("R-1"))
        assert "no longer counts" in shown and "0/2" in shown, shown
        thread = "\n".join(world.thread_texts("R-1"))
        assert "bob" in thread and "no longer counts" in thread, thread

        # One lead is not two leads: nothing runs.
        assert await world.click(CAROL, "approve", "R-1") == 200
        await world.settle()
        one = await world.app.service.get("R-1")
        assert one.status is RequestStatus.pending, "executed with one lead and a signature that no longer counts"
        assert one.signed == 1
        assert not world.real_writes("deployments/api")
        assert "1/2" in card_text(world.card("R-1"))

        # A second lead: approved by carol and dave, and it runs.
        assert await world.click(DAVE, "approve", "R-1") == 200
        await world.settle()
        done = await world.app.service.get("R-1")
        assert done.status is RequestStatus.succeeded, done.outcome
        events = await world.app.service.timeline("R-1")
        approved = [e for e in events if e.type is EventType.approved]
        assert approved[-1].title == "quorum reached: approved by carol, dave"
        assert world.real_writes("deployments/api")
