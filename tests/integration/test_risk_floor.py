"""The risk floor never drops because the cluster could not be read, and it is checked again before execution
(issue: hardening, defect 1)."""

from __future__ import annotations

import pytest

from core.domain.approvals import Place, RequestStatus
from core.domain.changes import PreviewRefused
from core.domain.events import EventType
from core.domain.policy import Person, Risk
from testkit.support import make_settings, running_app

CONSOLE = Place(platform="console", channel="console")
ALICE, BOB, CAROL = Person(name="alice"), Person(name="bob"), Person(name="carol")


async def test_an_unreadable_cluster_counts_as_the_worst_case(sqlite_database_url: str) -> None:
    async with running_app(make_settings(sqlite_database_url)) as app:
        assert app.sandbox is not None
        # Forbidden to read the target: refused at once, nobody signs blind (issue 21).
        app.sandbox.inject("GET", r"/deployments/api$", status=403, reason="Forbidden", times=None)
        with pytest.raises(PreviewRefused, match="nobody signs blind"):
            await app.service.request("scale deployment/api --replicas=2 -n prod", by=ALICE, via="console")
        app.sandbox.clear_faults()
        # Unavailable: the request stands, at the worst case.
        for status, reason in ((500, "InternalError"), (503, "ServiceUnavailable")):
            app.sandbox.inject("GET", r"/deployments/api$", status=status, reason=reason, times=None)
            request = await app.service.request("scale deployment/api --replicas=2 -n prod", by=ALICE,
                                                via="console")
            app.sandbox.clear_faults()
            assert request.risk is Risk.high, status
            assert request.quorum == 2
            assert request.blast is not None
            assert "could not read the cluster" in request.blast.summary()
            assert "worst case" in request.blast.summary()
        # The same scale with the cluster readable: 3 → 2 replicas is not a drop by more than half.
        readable = await app.service.request("scale deployment/api --replicas=2 -n prod", by=ALICE, via="console")
        assert readable.risk is Risk.medium and readable.quorum == 1
        assert readable.blast is not None and "could not read" not in readable.blast.summary()


async def test_a_floor_raised_by_fresh_facts_sends_the_request_back_for_signatures(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        assert app.sandbox is not None
        request = await app.service.request("scale deployment/api --replicas=2 -n prod", by=ALICE, via="console",
                                            origin=CONSOLE)
        assert request.risk is Risk.medium and request.quorum == 1
        # While it waits, the deployment grows: scaling it to 2 is now a drop by more than half.
        deployment = app.sandbox.get("Deployment", "prod", "api")
        assert deployment is not None
        deployment["spec"]["replicas"] = 10
        app.sandbox.put(deployment)
        await app.service.sign(request.id, by=BOB, via="console")
        await app.settle()
        back = await app.service.get(request.id)
        assert back.status is RequestStatus.pending
        assert back.risk is Risk.high and back.quorum == 2 and back.signers == ("bob",)
        events = await app.service.timeline(request.id)
        raised = [e for e in events if e.type is EventType.risk_raised]
        assert len(raised) == 1 and "10" in raised[0].detail
        assert not [e for e in events if e.type in (EventType.claimed, EventType.executed)]
        scaled = app.sandbox.get("Deployment", "prod", "api")
        assert scaled is not None and scaled["spec"]["replicas"] == 10  # nothing ran

        done = await app.service.sign(request.id, by=CAROL, via="console")
        assert done.status is RequestStatus.approved
        await app.settle()
        assert (await app.service.get(request.id)).status is RequestStatus.succeeded
        scaled = app.sandbox.get("Deployment", "prod", "api")
        assert scaled is not None and scaled["spec"]["replicas"] == 2
