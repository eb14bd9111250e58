"""Who may do what: every chat command and button × requester, approver, other approver, outsider and an
unmapped account, through the real command layer, database and sandbox cluster."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bot.bootstrap import App
from core.chat.commands import ChatContext, Reply, Vote
from core.chat.parser import from_button
from core.domain.approvals import Place
from core.domain.ids import parse_playbook_id
from testkit.support import make_settings, running_app
from testkit.support.policy import team_policy

POLICY = team_policy(slack={"alice": "U0ALICE", "bob": "U0BOB", "carol": "U0CAROL", "dave": "U0DAVE"},
                     medium_quorum=2)

ACCOUNTS = {"requester": "U0ALICE", "approver": "U0BOB", "other approver": "U0CAROL", "outsider": "U0DAVE",
            "unmapped": "U0NOBODY"}
CHANNEL = Place(platform="slack", channel="C0OPS")


def ctx(role: str) -> ChatContext:
    return ChatContext(platform="slack", account=ACCOUNTS[role], place=CHANNEL)


Action = Callable[[App, str], Awaitable[Reply]]


def command(text: str) -> Action:
    async def run(app: App, role: str) -> Reply:
        return await app.chat.handle(text, ctx(role))
    return run


def button(action: str, value: str) -> Action:
    async def run(app: App, role: str) -> Reply:
        return await app.chat.run(from_button(action, value), ctx(role))
    return run


def vote(playbook_id: str) -> Action:
    async def run(app: App, role: str) -> Reply:
        return await app.chat.run(Vote(playbook=parse_playbook_id(playbook_id), approve=True), ctx(role))
    return run


OK, NO = True, False
# (action, requester, approver, other approver, outsider, unmapped, what a refusal must mention)
MATRIX: list[tuple[str, Action, tuple[bool, bool, bool, bool, bool], str]] = [
    ("request", command("request rollout restart deployment/web -n prod"), (OK, OK, OK, OK, NO), "policy"),
    ("status", command("status R-1"), (OK, OK, OK, OK, NO), "policy"),
    ("timeline", command("timeline R-1"), (OK, OK, OK, OK, NO), "policy"),
    ("list", command("list"), (OK, OK, OK, OK, NO), "policy"),
    ("help", command("help"), (OK, OK, OK, OK, OK), ""),
    ("playbooks", command("playbooks"), (OK, OK, OK, OK, NO), "policy"),
    ("incidents", command("incidents"), (OK, OK, OK, OK, NO), "policy"),
    ("approve button", button("approve", "R-1"), (NO, OK, OK, NO, NO), "sign"),
    ("reject button", button("reject", "R-1"), (NO, OK, OK, NO, NO), "sign"),
    ("cancel", command("cancel R-1"), (OK, NO, NO, NO, NO), "cancel"),
    ("resolve", command("resolve INC-1 score=5"), (OK, OK, OK, NO, NO), "resolve"),
    ("rate button", button("rate", "INC-1:5"), (OK, OK, OK, NO, NO), "resolve"),
    ("playbook vote", vote("PB-1"), (NO, NO, OK, NO, NO), "playbooks"),
]
ROLES = ("requester", "approver", "other approver", "outsider", "unmapped")


async def prepared(app: App) -> None:
    """R-1 pending (asked by alice), INC-1 with a succeeded fix, PB-1 offered for votes."""
    alice = app.policy.people["alice"]
    await app.service.request("rollout restart deployment/api -n prod", by=alice, via="slack", origin=CHANNEL)
    fix = await app.service.request("rollout restart deployment/worker -n prod", by=alice, via="slack",
                                    origin=CHANNEL, incident_id="INC-9")
    for name in ("bob", "carol"):
        await app.service.sign(fix.id, by=app.policy.people[name], via="slack")
    await app.settle()
    await app.incidents.resolve("INC-9", by=app.policy.people["bob"], score=4, via="slack")
    await app.service.request("rollout restart deployment/web -n staging", by=alice, via="slack",
                              origin=CHANNEL, incident_id="INC-1")


@pytest.mark.parametrize(("name", "action", "allowed", "about"), MATRIX, ids=[row[0] for row in MATRIX])
@pytest.mark.parametrize("role", ROLES)
async def test_authorization_matrix(sqlite_database_url: str, name: str, action: Action,
                                    allowed: tuple[bool, ...], about: str, role: str) -> None:
    async with running_app(make_settings(sqlite_database_url), policy=POLICY) as app:
        await prepared(app)
        assert [p.id for p in await app.playbooks.all()] == ["PB-1"]
        reply = await action(app, role)
        expected = allowed[ROLES.index(role)]
        assert reply.ok is expected, f"{name} by {role}: {reply.text}"
        if not expected:
            assert len(reply.text) > 30  # a sentence saying why, not a code
            if role == "unmapped":
                assert "not in the policy" in reply.text and ACCOUNTS["unmapped"] in reply.text


async def test_requests_are_rate_limited_per_person(sqlite_database_url: str) -> None:
    async with running_app(make_settings(sqlite_database_url), policy=POLICY) as app:
        replies = [await app.chat.handle("request cordon node-3", ctx("outsider")) for _ in range(21)]
        assert all(r.ok for r in replies[:20])
        refused = replies[20]
        assert not refused.ok and "20 requests in the last minute" in refused.text and "wait" in refused.text
        # Someone else is not affected.
        assert (await app.chat.handle("request cordon node-3", ctx("approver"))).ok


@pytest.mark.parametrize("text", [
    "request rollout restart deployment/api -n prod reason=\"" + "x" * 600 + "\"",
    "request " + "a" * 2100,
    "status " + "R-" + "9" * 40,
    "request rollout restart deployment/api -n prod incident=INC-" + "7" * 80,
])
async def test_oversized_input_is_refused_and_stores_nothing(sqlite_database_url: str, text: str) -> None:
    async with running_app(make_settings(sqlite_database_url), policy=POLICY) as app:
        reply = await app.chat.handle(text, ctx("approver"))
        assert not reply.ok and len(reply.text) < 2000
        assert await app.service.pending() == []
