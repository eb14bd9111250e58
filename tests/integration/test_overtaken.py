"""A verification that a later change of the same target overtakes ends at once, `succeeded`, saying what
overtook it (issue 21, item 3): it never waits for its deadline and no way back is proposed. The later change is
made from outside, with the official client against the sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client

from adapters.kubernetes import connect
from bot.bootstrap import App
from core.domain.approvals import ApprovalRequest, Place, RequestStatus
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
        await app.verification.run_due()
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
        await app.verification.run_due()
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
        await app.verification.run_due()
        assert (await app.service.get(restarted.id)).status is RequestStatus.verifying
