"""Break glass on Slack, on the wire (issue 20, item 2): `/signoff breakglass R-1 reason="…"` runs the request
on one signature, the card says 🚨 break glass, the thread's review message mentions who could have signed and
carries `signoff_countersign` / `signoff_dispute`; only reviewers may press them; the dispute button opens a
modal asking the reason, the dispute mentions the leads, a countersignature closes the review; the request's
JSON carries the break glass."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.api_json import request_json
from core.domain.approvals import RequestStatus
from testkit.support import MovableClock
from testkit.support.policy import team_policy
from testkit.support.slack import ALICE, BOB, CAROL, MALLORY, RESTART_API, SlackWorld, card_text, slack_world

POLICY = team_policy(slack={"alice": ALICE, "bob": BOB, "carol": CAROL, "mallory": MALLORY}) + """
[groups.leads]
slack = "S0LEADS"

[breakglass]
who = ["sre"]
after = "5m"
reviewers = ["leads"]
"""


def review_message(world: SlackWorld) -> dict[str, Any]:
    card = world.card("R-1")
    for message in world.fake.thread("C0OPS", card["ts"]):
        for block in message.get("blocks") or []:
            for element in block.get("elements") or []:
                if element.get("action_id") == "signoff_countersign":
                    return message
    raise AssertionError("no review message in the thread")


async def test_break_glass_in_slack(sqlite_database_url: str) -> None:
    clock = MovableClock(datetime(2026, 3, 2, 3, 0, tzinfo=UTC))
    async with slack_world(sqlite_database_url, policy=POLICY, clock=clock) as world:
        assert await world.command(ALICE, RESTART_API) == 200
        await world.settle()
        assert await world.command(ALICE, 'breakglass R-1 reason="api down, nobody answers"') == 200
        await world.settle()
        assert any("becomes possible after 5m" in t for t in world.private_texts(ALICE))
        clock.advance(minutes=6)
        assert await world.command(MALLORY, 'breakglass R-1 reason="me too"') == 200
        await world.settle()
        assert any("Only sre may break glass" in t for t in world.private_texts(MALLORY))

        assert await world.command(ALICE, 'breakglass R-1 reason="api down, nobody answers"') == 200
        await world.settle()
        request = await world.app.service.get("R-1")
        assert request.status is RequestStatus.succeeded, request.status
        assert len(world.real_writes("deployments/api")) == 1  # exactly once
        assert "🚨 break glass by alice: api down, nobody answers" in card_text(world.card("R-1"))

        review = review_message(world)
        ids = [(e["action_id"], e["value"]) for b in review["blocks"] for e in b.get("elements") or []
               if "action_id" in e]
        assert ids == [("signoff_countersign", "R-1"), ("signoff_dispute", "R-1")]
        everything = str(review)
        assert f"<@{BOB}>" in everything and f"<@{CAROL}>" in everything  # who could have signed

        assert await world.click_button(BOB, review, "signoff_countersign", "R-1") == 200  # not a reviewer
        await world.settle()
        assert any("Only members of leads review" in t for t in world.private_texts(BOB))
        # Dispute asks the reason in a modal (callback_id signoff_dispute); a non-reviewer gets no modal.
        assert await world.click_button(BOB, review, "signoff_dispute", "R-1") == 200
        await world.settle()
        assert world.fake.views_for(BOB) == []
        assert await world.click_button(CAROL, review, "signoff_dispute", "R-1") == 200
        await world.settle()
        [view] = world.fake.views_for(CAROL)
        assert view["callback_id"] == "signoff_dispute" and json.loads(view["private_metadata"])["request"] == "R-1"
        [block] = view["blocks"]
        action = block["element"]["action_id"]
        status, answer = await world.submit_view(CAROL, view, {action: "  "})  # no reason: refused in the modal
        assert status == 200 and answer["response_action"] == "errors"
        assert "reason" in answer["errors"][block["block_id"]]
        status, answer = await world.submit_view(CAROL, view, {action: "could have waited for bob"})
        assert (status, answer) == (200, {})
        await world.settle()
        thread = "\n".join(world.thread_texts("R-1"))
        assert "carol disputed the break glass by alice on R-1: could have waited for bob" in thread
        assert "<!subteam^S0LEADS>" in str(world.fake.thread("C0OPS", world.card("R-1")["ts"]))

        assert await world.click_button(CAROL, review, "signoff_countersign", "R-1") == 200
        await world.settle()
        data = request_json(await world.app.service.get("R-1"))["breakglass"]
        assert data["by"] == "alice" and data["reason"] == "api down, nobody answers"
        assert data["countersigned_by"] == ["carol"] and data["disputed_by"] == ["carol"]
        assert data["status"] == "countersigned" and data["review_due"].startswith("2026-03-03T03:06")
        assert request_json(await world.app.service.get("R-1"))["breakglass"] is not None
