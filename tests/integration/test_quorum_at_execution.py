"""Execution counts the signatures itself (issue: hardening II, defect 2): a request stored as approved without
its quorum of counted signatures (a row edited in the database, or approved by an older signoff that counted
signatures its raised rule no longer admits) is blocked, and nothing runs."""

from __future__ import annotations

from typing import Any

from core.domain.approvals import Place, RequestStatus
from testkit.support import make_settings, running_app

CONSOLE = Place(platform="console", channel="console")
POLICY = """
[people.alice]
groups = ["sre"]
[people.bob]
groups = ["sre"]
[people.carol]
groups = ["sre", "leads"]
[people.dave]
groups = ["leads"]

[risk.medium]
quorum = 1
approvers = ["sre"]

[risk.high]
quorum = 2
approvers = ["leads"]
"""


async def test_an_approval_short_of_its_counted_quorum_is_blocked(database_url: str) -> None:
    async with running_app(make_settings(database_url), policy=POLICY) as app:
        assert app.sandbox is not None
        alice, carol = app.policy.people["alice"], app.policy.people["carol"]
        request = await app.service.request("rollout undo deployment/api -n prod", by=alice, via="console",
                                            origin=CONSOLE)
        assert request.quorum == 2
        signed = await app.service.sign(request.id, by=carol, via="console")
        assert signed.status is RequestStatus.pending and signed.signed == 1

        def forge(uow: Any) -> None:  # someone with database access marks it approved with one lead
            current = uow.requests.get(request.id)
            forged = current.model_copy(update={"status": RequestStatus.approved, "approved_at": current.created_at})
            uow.requests.update(forged, expected_version=current.version)

        await app.db.write(forge)
        await app.settle()
        done = await app.service.get(request.id)
        assert done.status is RequestStatus.blocked, done.outcome
        assert done.outcome is not None and "1/2" in (done.outcome.reason or "")
        assert not [r for r in app.sandbox.requests
                    if r[0] in ("PATCH", "PUT") and "deployments/api" in r[1] and "dryRun" not in str(r[2])]


