"""A flaky API server: with 30% of Kubernetes calls failing with a transient 5xx, at least 95% of requests still
succeed, because dry runs and safe real calls are retried with backoff (issue: hardening, defect 14).

The requests run one after another, so the seeded faults fall on the same calls every run."""

from __future__ import annotations

from core.domain.approvals import Place, RequestStatus
from core.domain.policy import Person
from testkit.support import make_settings, running_app

CONSOLE = Place(platform="console", channel="console")
ALICE, BOB, CAROL = Person(name="alice"), Person(name="bob"), Person(name="carol")


async def test_most_requests_succeed_under_30_percent_transient_faults(sqlite_database_url: str) -> None:
    async with running_app(make_settings(sqlite_database_url)) as app:
        assert app.sandbox is not None
        names = app.sandbox.add_deployments("flaky", 16, replicas=2)
        actions = [f"rollout restart deployment/{name} -n flaky" for name in names[:10]]
        actions += [f"scale deployment/{name} --replicas=3 -n flaky" for name in names[10:]]
        actions += ["cordon node-1", "uncordon node-1", "cordon node-2", "uncordon node-2"]
        app.sandbox.inject_random(0.3, seed=11, statuses=(500, 503))
        outcomes: dict[str, RequestStatus] = {}
        for action in actions:
            request = await app.service.request(action, by=ALICE, via="console", origin=CONSOLE)
            for signer in (BOB, CAROL)[:request.quorum]:
                await app.service.sign(request.id, by=signer, via="console")
            await app.settle()
            outcomes[action] = (await app.service.get(request.id)).status
        app.sandbox.clear_faults()
        assert app.sandbox.faults.taken >= len(actions) // 2, "the faults did not fire"
        succeeded = [a for a, status in outcomes.items() if status is RequestStatus.succeeded]
        assert len(succeeded) >= 0.95 * len(actions), outcomes
        # A restart re-sent after a 5xx carries the same restartedAt: each deployment rolled once.
        for name in names[:10]:
            deployment = app.sandbox.get("Deployment", "flaky", name)
            assert deployment is not None and deployment["metadata"]["generation"] == 2, name
