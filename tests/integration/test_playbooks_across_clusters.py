"""`[playbooks] across_clusters` through alert intake, with two sandbox clusters: a playbook learned on us-1 is
proposed for the same crash on eu-1 only when the policy says so, and then says where it was learned."""

from __future__ import annotations

import pytest

from adapters.alertmanager import parse_alertmanager
from bot.bootstrap import bootstrap
from core.domain.playbooks import PlaybookStatus
from core.domain.policy_file import parse_policy
from testkit.support import make_settings
from tests.integration.test_learning import alert, payload

FLEET = """\
[people.alice]
groups = ["sre"]
[people.bob]
groups = ["sre"]

[risk.medium]
quorum = 1
approvers = ["sre"]

[risk.high]
quorum = 1
approvers = ["sre"]

[clusters.eu-1]
default = true

[clusters.us-1]

[playbooks]
across_clusters = {across}
"""


@pytest.mark.parametrize("across", [False, True])
async def test_a_playbook_from_another_cluster_needs_across_clusters(sqlite_database_url: str, across: bool) -> None:
    policy = parse_policy(FLEET.format(across=str(across).lower()), "fleet.toml")
    async with bootstrap(make_settings(sqlite_database_url), policy=policy, min_update_interval=0.0) as app:
        app.service.default_places["console"] = "console"
        labels = {"namespace": "prod", "deployment": "api", "container": "api"}
        (first,) = await app.alerts.ingest_alerts(parse_alertmanager(payload(
            alert("KubePodCrashLooping", {**labels, "cluster": "us-1"}, fingerprint="u1"))))
        assert first.request_id is not None
        bob = app.policy.people["bob"]
        await app.service.sign(first.request_id, by=bob, via="console")
        await app.settle()
        await app.incidents.resolve(first.incident_id, by=bob, score=5, via="console")
        (playbook,) = await app.playbooks.all()
        assert playbook.status is PlaybookStatus.approved and playbook.trigger.labels["cluster"] == "us-1"

        (second,) = await app.alerts.ingest_alerts(parse_alertmanager(payload(
            alert("KubePodCrashLooping", {**labels, "cluster": "eu-1"}, fingerprint="e1",
                  starts="2026-11-28T09:00:00Z"))))
        request = await app.service.get(second.request_id) if second.request_id else None
        if not across:
            assert second.track != "playbook"
            return
        assert second.track == "playbook" and request is not None and request.cluster == "eu-1"
        assert "us-1" not in request.operation.command()  # it runs on the alert's own cluster
        assert request.proposal is not None and request.proposal.playbook_id == playbook.id
        assert request.proposal.rationale is not None
        assert request.proposal.rationale.endswith("learned on cluster us-1)")
