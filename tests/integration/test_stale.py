"""What was signed is what runs (issue 21, item 2), on the wire: a restart approved on Slack after someone deployed
another image from outside (the official client against the sandbox) ends `stale`, writes nothing, and its card
(the fake Slack Web API) says what changed and offers Request again; the click (a signed request into Bolt) makes
a new pending request by the clicker. A rollback whose pinned ReplicaSet is gone goes stale too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client

from adapters.kubernetes import connect
from core.chat.commands import ChatContext
from core.domain.approvals import Place, RequestStatus
from testkit.support import make_settings, running_app
from testkit.support.slack import ALICE, BOB, CAROL, RESTART_API, TEAM_POLICY, buttons, card_text, slack_world

CONSOLE = Place(platform="console", channel="console")


async def outside(sandbox: Any, change: Any) -> Any:
    """A change made by someone else, with the official client (in a thread: the sandbox serves on this loop)."""
    api_client = connect.for_url(sandbox.url, sandbox.token)
    try:
        return await asyncio.to_thread(change, client.AppsV1Api(api_client))
    finally:
        api_client.close()  # type: ignore[no-untyped-call]


def set_image(image: str) -> Any:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "api", "image": image}]}}}}
    return lambda apps: apps.patch_namespaced_deployment("api", "prod", patch)


async def test_a_restart_whose_image_changed_after_it_was_signed_goes_stale_and_can_be_requested_again(
        sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        sandbox = world.app.sandbox
        assert await world.command(ALICE, RESTART_API) == 200
        await world.settle()
        before = (await world.app.service.get("R-1")).pin
        assert before is not None and before.images == (("api", "ghcr.io/acme/api:1.4.2"),)
        assert await world.click(BOB, "approve", "R-1") == 200
        await world.settle()
        await outside(sandbox, set_image("ghcr.io/acme/api:9.9.9"))  # someone deploys before the second signature
        sandbox.clear_requests()
        assert await world.click(CAROL, "approve", "R-1") == 200
        await world.settle()

        request = await world.app.service.get("R-1")
        assert request.status is RequestStatus.stale, request.outcome
        assert world.real_writes("deployments/api") == []  # nothing ran: no dry run, no real call
        assert not [r for r in sandbox.requests if r[0] == "PATCH"]
        card = world.card("R-1")
        assert "image (api): ghcr.io/acme/api:1.4.2 → ghcr.io/acme/api:9.9.9" in card_text(card)
        assert [(b["action_id"], b["value"]) for b in buttons(card)] == [("signoff_rerequest", "R-1")]
        assert any("R-1 is stale" in text and "Request again" in text for text in world.thread_texts("R-1"))

        assert await world.click(BOB, "rerequest", "R-1") == 200
        await world.settle()
        again = await world.app.service.get("R-2")
        assert again.status is RequestStatus.pending and again.requested_by == "bob"
        assert again.action == request.action and again.cluster == request.cluster
        assert again.pin is not None and again.pin.images == (("api", "ghcr.io/acme/api:9.9.9"),)

        # A second click on the stale card: refused, the first new request is the one to sign.
        assert await world.click(CAROL, "rerequest", "R-1") == 200
        await world.settle()
        assert any("R-1 was already asked again: R-2" in text for text in world.private_texts(CAROL))
        # Request again on a request that is not stale: refused with a sentence, nothing made.
        assert await world.click(CAROL, "rerequest", "R-2") == 200
        await world.settle()
        assert any("R-2 is pending, not stale" in text for text in world.private_texts(CAROL))
        assert await world.app.service.get("R-2") == again
        assert [r.id for r in await world.app.service.pending()] == ["R-2"]


async def test_a_scale_or_restart_elsewhere_does_not_make_a_request_stale(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        sandbox = world.app.sandbox
        assert await world.command(ALICE, RESTART_API) == 200
        await world.settle()
        assert await world.click(BOB, "approve", "R-1") == 200
        await world.settle()
        await outside(sandbox, lambda apps: apps.patch_namespaced_deployment_scale(
            "api", "prod", {"spec": {"replicas": 5}}))
        await outside(sandbox, lambda apps: apps.patch_namespaced_deployment("api", "prod", {"spec": {"template": {
            "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-12-05T10:41:00Z"}}}}}))
        assert await world.click(CAROL, "approve", "R-1") == 200
        await world.settle()
        request = await world.app.service.get("R-1")
        assert request.status in (RequestStatus.verifying, RequestStatus.succeeded), request.outcome
        assert world.real_writes("deployments/api")


async def test_a_rollback_whose_pinned_revision_is_gone_goes_stale(database_url: str) -> None:
    async with running_app(make_settings(database_url), policy=TEAM_POLICY) as app:
        assert app.sandbox is not None
        alice, bob, carol = (app.policy.people[n] for n in ("alice", "bob", "carol"))
        request = await app.service.request("rollout undo deployment/api -n prod", by=alice, via="console",
                                            origin=CONSOLE)
        assert request.pin is not None and request.pin.revision == 2 and request.pin.revision_name
        await app.service.sign(request.id, by=bob, via="console")
        # The ReplicaSet the card showed (revision 2) is gone (its history was pruned).
        assert app.sandbox.delete_object("ReplicaSet", "prod", request.pin.revision_name)
        app.sandbox.clear_requests()
        if request.quorum > 1:
            await app.service.sign(request.id, by=carol, via="console")
        await app.settle()
        done = await app.service.get(request.id)
        assert done.status is RequestStatus.stale, done.outcome
        assert done.outcome is not None and "rollback target: revision 2" in done.outcome.summary
        assert not [r for r in app.sandbox.requests if r[0] == "PATCH"]


async def test_console_rerequest_and_a_tampered_fingerprint(database_url: str) -> None:
    async with running_app(make_settings(database_url), policy=TEAM_POLICY) as app:
        assert app.sandbox is not None
        people = app.policy.people
        bob = ChatContext(platform="console", account="bob", place=CONSOLE)
        first = await app.service.request("rollout restart deployment/api -n prod", by=people["alice"],
                                          via="console", origin=CONSOLE)
        refused = await app.chat.handle(f"rerequest {first.id}", bob)
        assert not refused.ok and f"{first.id} is pending, not stale" in refused.text
        await outside(app.sandbox, set_image("ghcr.io/acme/api:2.0.0"))
        await app.service.sign(first.id, by=people["bob"], via="console")
        await app.settle()
        assert (await app.service.get(first.id)).status is RequestStatus.stale
        again = await app.chat.handle(f"rerequest {first.id}", bob)
        assert again.ok and again.request_id is not None, again.text
        second = await app.service.get(again.request_id)
        assert second.requested_by == "bob" and second.status is RequestStatus.pending

        # Someone with database access rewrites the pinned fingerprint to the target as it is now: caught like a
        # tampered operation (the signature digest covers it), blocked, nothing runs.
        await outside(app.sandbox, set_image("ghcr.io/acme/api:3.0.0"))

        def forge(uow: Any) -> None:
            current = uow.requests.get(second.id)
            fresh = current.pin.model_copy(update={"fingerprint": "f" * 64})
            uow.requests.update(current.model_copy(update={"pin": fresh}), expected_version=current.version)

        await app.db.write(forge)
        app.sandbox.clear_requests()
        await app.service.sign(second.id, by=people["carol"], via="console")
        await app.settle()
        done = await app.service.get(second.id)
        assert done.status is RequestStatus.blocked, done.outcome
        assert done.outcome is not None and "not what was signed" in done.outcome.summary
        assert not [r for r in app.sandbox.requests if r[0] == "PATCH"]


async def test_the_claim_itself_refuses_a_request_whose_turn_it_is_not(database_url: str) -> None:
    """The compare-and-swap, not only the check before it: a worker that skipped the check (a race between
    replicas) still cannot claim a request approved after another on the same target that is not done."""
    async with running_app(make_settings(database_url), policy=TEAM_POLICY) as app:
        people = app.policy.people
        ids = []
        for count in (4, 5):
            made = await app.service.request(f"scale deployment/api --replicas={count} -n prod", by=people["alice"],
                                             via="console", origin=CONSOLE)
            ids.append(made.id)
        later = datetime(2030, 1, 1, tzinfo=UTC)

        def approve(uow: Any) -> None:
            for offset, request_id in enumerate(ids):
                current = uow.requests.get(request_id)
                uow.requests.update(current.model_copy(update={
                    "status": RequestStatus.approved, "approved_at": current.created_at + timedelta(seconds=offset),
                    "version": current.version + 1}), expected_version=current.version)

        def claim(request_id: str) -> Any:
            def work(uow: Any) -> bool:
                current = uow.requests.get(request_id)
                executing = current.model_copy(update={"status": RequestStatus.executing,
                                                       "version": current.version + 1})
                return bool(uow.requests.claim(executing, expected_version=current.version, worker="w",
                                               lease_until=later))
            return work

        await app.db.write(approve)
        assert await app.db.read(lambda uow: uow.requests.ahead_of(uow.requests.get(ids[1]))) == ids[0]
        assert await app.db.write(claim(ids[1])) is False  # the earlier one is approved, not done
        assert await app.db.write(claim(ids[0])) is True
        assert await app.db.write(claim(ids[1])) is False  # the earlier one is executing
        assert await app.db.read(lambda uow: uow.requests.ahead_of(uow.requests.get(ids[0]))) is None
