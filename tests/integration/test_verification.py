"""Verification against the sandbox: every operation kind is followed to its effect, ends `succeeded`
(verified) or `failed` with the pods and reasons named, resumes after a restart, and a failed
restart gets its way back proposed as an ordinary signed request."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from bot.bootstrap import App
from core.app.maintenance import Maintenance
from core.chat.cards import request_card
from core.domain.alerts import Alert, AlertStatus
from core.domain.approvals import ApprovalRequest, Place, Proposal, RequestStatus
from core.domain.operations import RollbackOp
from core.domain.playbooks import PlaybookStatus
from core.domain.policy import Person
from testkit.support import MovableClock, make_settings, running_app

CONSOLE = Place(platform="console", channel="console")
ALICE, BOB = Person(name="alice"), Person(name="bob")
FAIL = "sandbox.signoff.dev/fail"


async def _run(app: App, action: str, *, incident: str | None = None) -> ApprovalRequest:
    request = await app.service.request(action, by=ALICE, via="console", origin=CONSOLE, incident_id=incident)
    for signer in ("bob", "carol", "dave"):
        if (await app.service.get(request.id)).status is RequestStatus.pending:
            await app.service.sign(request.id, by=Person(name=signer), via="console")
    await app.execution.run_approved()
    return await app.service.get(request.id)


def _annotate(app: App, kind: str, namespace: str, name: str, **changes: Any) -> None:
    obj = app.sandbox.get(kind, namespace, name)
    obj["metadata"].setdefault("annotations", {}).update(changes.pop("annotations", {}))
    obj["spec"].update(changes)
    app.sandbox.put(obj)


async def _later(app: App, clock: MovableClock, seconds: float) -> ApprovalRequest | None:
    """Time passes in the sandbox and for signoff; the due looks run, and those the watches woke."""
    app.sandbox.advance(seconds)
    clock.advance(seconds=seconds)
    await app.verification.run_due()
    for _ in range(4):  # what the sandbox did reaches signoff's watches within milliseconds
        await asyncio.sleep(0.05)
        await app.verification.run_due()
    return None


@pytest.mark.parametrize("action", [
    "rollout restart deployment/api -n prod",
    "rollout restart statefulset/postgres -n prod",
    "rollout restart daemonset/node-exporter -n monitoring",
    "scale deployment/api --replicas=5 -n prod",
    "scale deployment/api --replicas=1 -n prod",
    "scale statefulset/postgres --replicas=2 -n prod",
    "cordon node-2",
    "drain node-1",
])
async def test_every_operation_kind_is_verified(database_url: str, action: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        done = await _run(app, action)
        assert done.status is RequestStatus.succeeded, done.outcome
        assert done.verification is not None and done.verification.progress is not None
        assert done.verification.progress.done
        assert done.outcome is not None and "verified in" in done.outcome.summary


async def test_rollback_uncordon_and_delete_pod_are_verified(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        assert (await _run(app, "rollout restart deployment/api -n prod")).status is RequestStatus.succeeded
        undo = await _run(app, "rollout undo deployment/api -n prod")
        assert undo.status is RequestStatus.succeeded
        assert "3/3 pods ready" in (undo.outcome.summary if undo.outcome else "")
        assert (await _run(app, "cordon node-3")).status is RequestStatus.succeeded
        uncordon = await _run(app, "uncordon node-3")
        assert uncordon.status is RequestStatus.succeeded
        assert "node-3 is schedulable" in (uncordon.outcome.summary if uncordon.outcome else "")
        pod = app.sandbox.objects("pod", "prod", label_selector="app=api")[0]["metadata"]["name"]
        deleted = await _run(app, f"delete pod/{pod} -n prod")
        assert deleted.status is RequestStatus.succeeded
        assert "the replacement pod is Ready" in (deleted.outcome.summary if deleted.outcome else "")
        stateful = await _run(app, "delete pod/postgres-0 -n prod")
        assert stateful.status is RequestStatus.succeeded


async def test_a_slow_rollout_shows_progress_then_is_verified(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        app.sandbox.set_ready_delay(5.0)
        request = await _run(app, "rollout restart deployment/api -n prod")
        assert request.status is RequestStatus.verifying
        card = request_card(request, clock.now())
        effect = next(f.value for f in card.fields if f.label == "Effect")
        assert effect.startswith("rolling out ▱▱▱ 3/3 updated · 0/3 available"), effect
        await _later(app, clock, 1.0)
        assert (await app.service.get(request.id)).status is RequestStatus.verifying
        await _later(app, clock, 5.0)
        done = await app.service.get(request.id)
        assert done.status is RequestStatus.succeeded
        assert done.outcome is not None and "verified in 6 s: 3/3 pods ready" in done.outcome.summary
        # old pods went only as the new ones turned Ready: none are left
        assert len(app.sandbox.objects("pod", "prod", label_selector="app=api")) == 3


async def test_a_crash_looping_restart_fails_with_reasons_and_the_way_back_is_proposed(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        _annotate(app, "deployment", "prod", "api", annotations={FAIL: "CrashLoopBackOff"},
                  progressDeadlineSeconds=60)
        request = await _run(app, "rollout restart deployment/api -n prod", incident="INC-7")
        assert request.status is RequestStatus.verifying
        for _ in range(8):
            await _later(app, clock, 10.0)
            if (await app.service.get(request.id)).status is not RequestStatus.verifying:
                break
        failed = await app.service.get(request.id)
        assert failed.status is RequestStatus.failed
        summary = failed.outcome.summary if failed.outcome else ""
        # failed fast: the third restart (at 30 s in the kubelet's back-off), not the 60 s deadline
        assert "failed after 30 s" in summary and "([verify] max_restarts)" in summary, summary
        assert "CrashLoopBackOff (restarted 3×), last terminated Error exit 1: api exited" in summary, summary
        # the old pods still serve: a rollout that cannot progress never removed them
        pods = app.sandbox.objects("pod", "prod", label_selector="app=api")
        assert sum(1 for p in pods if all(c["ready"] for c in p["status"]["containerStatuses"])) == 3
        # no rating is asked for a fix that did not verify
        assert not any(t.startswith(f"How well did {request.id}") for t in await _texts(app, clock))
        # the way back: an ordinary pending request in the same incident, never run unsigned
        pending = [r for r in await app.service.pending() if r.id != request.id]
        assert len(pending) == 1
        back = pending[0]
        assert isinstance(back.operation, RollbackOp) and back.incident_id == "INC-7"
        assert back.proposal is not None and back.proposal.track == "way back"
        assert "CrashLoopBackOff" in back.proposal.rationale
        assert back.status is RequestStatus.pending
        await app.execution.run_approved()
        assert (await app.service.get(back.id)).status is RequestStatus.pending
        # signed, it runs and is verified: the revived revision has no fault
        for signer in ("bob", "carol"):
            if (await app.service.get(back.id)).status is RequestStatus.pending:
                await app.service.sign(back.id, by=Person(name=signer), via="console")
        await app.execution.run_approved()
        await _later(app, clock, 1.0)
        undone = await app.service.get(back.id)
        assert undone.status is RequestStatus.succeeded, undone.outcome


async def test_the_policy_timeout_fails_a_statefulset_with_its_pods_named(database_url: str) -> None:
    clock = MovableClock()
    policy = '[verify]\ntimeout = "2m"\nstuck_after = "1h"\n'
    async with running_app(make_settings(database_url), clock=clock, policy=policy) as app:
        _annotate(app, "statefulset", "prod", "postgres", annotations={FAIL: "ImagePullBackOff"})
        request = await _run(app, "rollout restart statefulset/postgres -n prod")
        assert request.status is RequestStatus.verifying
        looks = 0
        while (await app.service.get(request.id)).status is RequestStatus.verifying and looks < 40:
            await _later(app, clock, 10.0)
            looks += 1
        failed = await app.service.get(request.id)
        assert failed.status is RequestStatus.failed
        summary = failed.outcome.summary if failed.outcome else ""
        assert "failed after 2m" in summary and "the verify timeout (120 s)" in summary, summary
        assert "postgres-0 ImagePullBackOff" in summary, summary
        # a statefulset restart has no `rollout undo`: no way back is proposed
        assert [r.id for r in await app.service.pending()] == []


async def test_a_restart_during_verifying_resumes_it(database_url: str) -> None:
    clock = MovableClock()
    settings = make_settings(database_url)
    async with running_app(settings, clock=clock) as app:
        app.sandbox.set_ready_delay(5.0)
        request = await _run(app, "rollout restart deployment/web -n prod")
        assert request.status is RequestStatus.verifying
        sandbox = app.sandbox
        # signoff stops here; a new process on the same database and cluster recovers
        async with running_app(settings, clock=clock, cluster=app.cluster) as again:
            counts = await Maintenance(store=again.db, clock=clock).recover(sole_worker=True)
            assert counts.get("interrupted", 0) == 0
            assert (await again.service.get(request.id)).status is RequestStatus.verifying
            sandbox.advance(6.0)
            clock.advance(seconds=6.0)
            await asyncio.sleep(0.2)  # the watches hear of it
            await again.settle()
            done = await again.service.get(request.id)
            assert done.status is RequestStatus.succeeded, done.outcome


async def _texts(app: App, clock: MovableClock) -> list[str]:
    """Every chat message signoff has queued (no chat is connected in these tests)."""
    due = await app.db.read(lambda uow: uow.outbox.due(clock.now() + timedelta(days=1), limit=10_000))
    return [m.text for m in due]


async def _fail_a_restart(app: App, clock: MovableClock, proposal: Proposal | None, incident: str) -> ApprovalRequest:
    request = await app.service.request("rollout restart deployment/api -n prod", by=ALICE, via="console",
                                        origin=CONSOLE, incident_id=incident, proposal=proposal)
    await app.service.sign(request.id, by=BOB, via="console")
    await app.execution.run_approved()
    for _ in range(8):
        await _later(app, clock, 10.0)
    return await app.service.get(request.id)


async def test_a_playbook_whose_proposals_fail_twice_in_a_row_is_suspended(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        fix = await _run(app, "rollout restart deployment/api -n prod", incident="INC-1")
        assert fix.status is RequestStatus.succeeded
        await app.incidents.resolve("INC-1", by=BOB, score=5, via="console")
        (playbook,) = await app.playbooks.all()
        assert playbook.status is PlaybookStatus.approved
        _annotate(app, "deployment", "prod", "api", annotations={FAIL: "CrashLoopBackOff"},
                  progressDeadlineSeconds=30)
        proposal = Proposal(track="playbook", playbook_id=playbook.id, similarity=0.9)
        first = await _fail_a_restart(app, clock, proposal, "INC-2")
        assert first.status is RequestStatus.failed
        (once,) = await app.playbooks.all()
        assert once.status is PlaybookStatus.approved and once.failures_in_a_row == 1
        # the way back of the first failure is not signed; a second proposal of the playbook fails too
        second = await _fail_a_restart(app, clock, proposal, "INC-3")
        assert second.status is RequestStatus.failed
        (suspended,) = await app.playbooks.all()
        assert suspended.status is PlaybookStatus.suspended
        assert (suspended.times_executed, suspended.times_succeeded) == (2, 0)
        texts = await _texts(app, clock)
        assert any(f"Playbook {playbook.id} is suspended" in t and second.id in t for t in texts), texts
        types = [e.type for e in await app.service.timeline("INC-1")]
        assert "playbook_suspended" in types


async def test_the_alert_resolving_after_a_verified_fix_is_evidence_for_the_rating(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        app.service.default_places["console"] = "console"
        pod = sorted(p["metadata"]["name"] for p in app.sandbox.objects("pod", "prod", "app=api"))[0]
        labels = {"alertname": "KubePodCrashLooping", "namespace": "prod", "pod": pod, "container": "api"}
        (opened,) = await app.alerts.ingest_alerts([Alert(status=AlertStatus.firing, labels=labels, key="k1",
                                                             fingerprint="f1")])
        assert opened.request_id is not None and opened.incident_id is not None
        await app.service.sign(opened.request_id, by=BOB, via="console")
        await app.execution.run_approved()
        assert (await app.service.get(opened.request_id)).status is RequestStatus.succeeded
        clock.advance(minutes=2)
        cleared = Alert(status=AlertStatus.resolved, labels=labels, key="k1", fingerprint="f1")
        await app.alerts.ingest_alerts([cleared])
        texts = await _texts(app, clock)
        said = f"{opened.incident_id}'s alert resolved 2 min after {opened.request_id} was verified"
        assert sum(said in t for t in texts) == 1, texts
        assert any(t.startswith("How well did") for t in texts)


async def test_a_drain_is_verified_by_the_node_holding_no_evictable_pod(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        done = await _run(app, "drain node-1")
        assert done.status is RequestStatus.succeeded, done.outcome
        assert done.outcome is not None and "no evictable pod left" in done.outcome.summary
