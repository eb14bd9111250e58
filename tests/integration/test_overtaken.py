"""A verification that a later change of the same target overtakes ends at once, `succeeded`, saying what
overtook it (issue 21, item 3): it never waits for its deadline and no way back is proposed. The later change is
made from outside, with the official client against the sandbox. And a second approved operation on the same
target waits for the first, its card saying for whom, then runs (one replica, every database)."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client

from adapters.kubernetes import connect
from bot.bootstrap import App
from core.chat.cards import request_card
from core.domain.approvals import ApprovalRequest, Place, RequestStatus
from core.domain.events import EventType
from core.domain.policy import Person
from testkit.support import MovableClock, make_settings, running_app

CONSOLE = Place(platform="console", channel="console")


async def outside(app: App, change: Any) -> Any:
    assert app.sandbox is not None
    api_client = connect.for_url(app.sandbox.url, app.sandbox.token)
    try:
        return await asyncio.to_thread(change, client.AppsV1Api(api_client))
    finally:
        api_client.close()  # type: ignore[no-untyped-call]


async def look(app: App) -> None:
    """The due looks, and those the watches wake: what the API server did reaches signoff's watches within
    milliseconds, on their own threads (tests/integration/test_verification.py does the same)."""
    await app.verification.run_due()
    for _ in range(6):
        await asyncio.sleep(0.05)
        await app.verification.run_due()


async def run(app: App, action: str) -> ApprovalRequest:
    request = await app.service.request(action, by=Person(name="alice"), via="console", origin=CONSOLE)
    for signer in ("bob", "carol", "dave"):
        if (await app.service.get(request.id)).status is RequestStatus.pending:
            await app.service.sign(request.id, by=Person(name=signer), via="console")
    await app.execution.run_approved()
    return await app.service.get(request.id)


async def test_a_scale_overtaken_by_another_scale_ends_succeeded_at_once(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        assert app.sandbox is not None
        app.sandbox.set_ready_delay(60.0)  # its new pods would take a minute
        scaled = await run(app, "scale deployment/api --replicas=6 -n prod")
        assert scaled.status is RequestStatus.verifying
        await outside(app, lambda apps: apps.patch_namespaced_deployment_scale(
            "api", "prod", {"spec": {"replicas": 2}}))
        clock.advance(seconds=2)
        await look(app)
        done = await app.service.get(scaled.id)
        assert done.status is RequestStatus.succeeded, done.outcome
        assert done.outcome is not None
        assert "overtaken after 2 s: a later change set the replicas to 2 (this request set 6)" in done.outcome.summary
        assert [r for r in await app.service.pending() if r.proposal is not None] == []  # no way back


async def test_a_restart_overtaken_by_a_deploy_ends_succeeded_and_proposes_no_way_back(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        assert app.sandbox is not None
        app.sandbox.set_ready_delay(60.0)
        restarted = await run(app, "rollout restart deployment/api -n prod")
        assert restarted.status is RequestStatus.verifying
        await outside(app, lambda apps: apps.patch_namespaced_deployment("api", "prod", {"spec": {"template": {
            "spec": {"containers": [{"name": "api", "image": "ghcr.io/acme/api:1.4.3"}]}}}}))
        clock.advance(seconds=3)
        await look(app)
        done = await app.service.get(restarted.id)
        assert done.status is RequestStatus.succeeded, done.outcome
        assert done.outcome is not None and "overtaken after 3 s: a later change of the pod template" in (
            done.outcome.summary)
        assert [r for r in await app.service.pending() if r.proposal is not None] == []


async def test_a_slow_restart_nobody_overtakes_keeps_verifying(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        assert app.sandbox is not None
        app.sandbox.set_ready_delay(60.0)
        restarted = await run(app, "rollout restart deployment/api -n prod")
        await outside(app, lambda apps: apps.patch_namespaced_deployment_scale(
            "api", "prod", {"spec": {"replicas": 3}}))  # the same count: nothing overtaken
        clock.advance(seconds=3)
        await look(app)
        assert (await app.service.get(restarted.id)).status is RequestStatus.verifying


async def test_a_second_operation_on_a_target_waits_its_turn_and_its_card_says_for_whom(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        assert app.sandbox is not None
        app.sandbox.set_ready_delay(5.0)
        first = await run(app, "scale deployment/api --replicas=5 -n prod")
        assert first.status is RequestStatus.verifying
        second = await run(app, "scale deployment/api --replicas=6 -n prod")
        assert second.status is RequestStatus.approved and second.waiting_for == first.id
        outcome = next(f.value for f in request_card(second, clock.now()).fields if f.label == "Outcome")
        assert outcome == f"approved: waiting for {first.id} (one operation per target at a time)"
        assert EventType.waiting in [e.type for e in await app.service.timeline(second.id)]
        # Another target does not wait.
        other = await run(app, "rollout restart statefulset/postgres -n prod")
        assert other.status in (RequestStatus.verifying, RequestStatus.succeeded)
        # Asked again while the first still verifies: still waiting, nothing written twice.
        await app.execution.run_approved()
        assert (await app.service.get(second.id)).status is RequestStatus.approved
        assert app.sandbox.get("deployment", "prod", "api")["spec"]["replicas"] == 5

        app.sandbox.advance(6.0)
        clock.advance(seconds=6)
        await look(app)
        assert (await app.service.get(first.id)).status is RequestStatus.succeeded
        await app.execution.run_approved()
        app.sandbox.advance(6.0)
        clock.advance(seconds=6)
        await look(app)
        done = await app.service.get(second.id)
        assert done.status is RequestStatus.succeeded, done.outcome
        assert app.sandbox.get("deployment", "prod", "api")["spec"]["replicas"] == 6
