"""Several clusters in one process: two sandbox API servers, one executor each (issue 19).

A request for one cluster reads, dry-runs, writes and verifies only there; an unknown cluster, or a channel the
cluster does not take requests from, is refused at once through chat and the HTTP API, and nothing is stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapters.alertmanager import parse_alertmanager
from adapters.kubernetes.sandbox.tls import kubeconfig_for_clusters
from bot.bootstrap import App, bootstrap
from bot.http import build_http_app
from bot.settings import Settings
from core.app.clusters import ClusterRegistry
from core.chat.commands import ChatContext
from core.domain.approvals import Place, RequestStatus
from core.domain.clusters import UnknownCluster
from core.domain.policy import Person, Policy
from core.domain.policy_file import PolicyFileError, parse_policy
from testkit.fakes.sandbox import HookedSandbox, hooked_cluster
from testkit.support import make_settings, running_app
from tests.integration.test_learning import alert, payload

ALICE, BOB = Person(name="alice"), Person(name="bob")
TOKEN = "fleet-token-0123456789abcdef"

POLICY = """\
[clusters.eu-1]
default = true
protected_namespaces = ["payments"]
slack_channel = "C0PROD"
channels = ["C0PROD"]

[clusters.us-1]
risk_floor = "high"
"""


@contextlib.asynccontextmanager
async def fleet(database_url: str) -> AsyncIterator[tuple[App, HookedSandbox, HookedSandbox]]:
    async with hooked_cluster(10.0) as (eu, eu_cluster), hooked_cluster(10.0) as (us, us_cluster):
        registry = ClusterRegistry({"eu-1": eu_cluster, "us-1": us_cluster}, default="eu-1")
        settings = make_settings(database_url, SIGNOFF_API_TOKEN=TOKEN)
        async with running_app(settings, policy=parse_policy(POLICY, "fleet.toml"), cluster=registry) as app:
            eu.clear_requests()
            us.clear_requests()
            yield app, eu, us


def _writes(sandbox: HookedSandbox) -> list[str]:
    return [f"{r.method} {r.path}" for r in sandbox.requests if r.method != "GET"]


async def test_a_request_for_one_cluster_never_touches_the_other(sqlite_database_url: str) -> None:
    async with fleet(sqlite_database_url) as (app, eu, us):
        request = await app.service.request("rollout restart deployment/api -n prod --context us-1", by=ALICE,
                                            via="console")
        assert request.cluster == "us-1" and request.operation.cluster == "us-1"
        assert request.risk.value == "high"  # us-1's floor
        assert not eu.requests  # the blast radius was read on us-1 only
        assert us.requests
        await app.service.sign(request.id, by=BOB, via="console")
        second = await app.service.get(request.id)
        if second.status is RequestStatus.pending:  # high risk: quorum 2 in the built-in policy
            await app.service.sign(request.id, by=Person(name="carol"), via="console")
        await app.settle()
        done = await app.service.get(request.id)
        assert done.status is RequestStatus.succeeded, done.outcome
        assert not eu.requests
        patches = _writes(us)
        assert any("dryRun" in r.query for r in us.requests if r.method == "PATCH")
        assert any(p.endswith("/namespaces/prod/deployments/api") for p in patches)
        eu_api = eu.get("Deployment", "prod", "api")
        us_api = us.get("Deployment", "prod", "api")
        assert eu_api is not None and us_api is not None
        annotations = us_api["spec"]["template"]["metadata"].get("annotations") or {}
        assert "kubectl.kubernetes.io/restartedAt" in annotations
        recorded = app.metrics.snapshot()
        assert recorded.counters["signoff_executions_total"] == {(("cluster", "us-1"), ("outcome", "succeeded")): 1.0}
        assert "kubectl.kubernetes.io/restartedAt" not in (eu_api["spec"]["template"]["metadata"].get(
            "annotations") or {})

        # The default cluster, in the English form and with no cluster named.
        english = await app.service.request("restart deployment api in prod on eu-1", by=ALICE, via="console")
        plain = await app.service.request("rollout restart deployment/web -n prod", by=ALICE, via="console")
        assert english.cluster == plain.cluster == "eu-1"
        assert english.risk.value == "medium"  # eu-1 has no floor of its own
        (payments,) = eu.add_deployments("payments", 1, prefix="api")  # a missing target is refused at once
        protected = await app.service.request(f"rollout restart deployment/{payments} -n payments", by=ALICE,
                                              via="console", cluster="eu-1")
        assert protected.risk.value == "critical"
        assert english.places == (Place(platform="slack", channel="C0PROD"),)


async def test_an_unknown_cluster_is_refused_through_chat_and_nothing_is_stored(sqlite_database_url: str) -> None:
    async with fleet(sqlite_database_url) as (app, eu, us):
        ctx = ChatContext(platform="console", account="alice", place=Place(platform="console", channel="console"))
        reply = await app.chat.handle("request rollout restart deployment/api -n prod cluster=ap-9", ctx)
        assert "no cluster `ap-9`" in reply.text and "eu-1, us-1" in reply.text
        reply = await app.chat.handle("request rollout restart deployment/api -n prod --context us-1 "
                                           "cluster=eu-1", ctx)
        assert "two clusters" in reply.text
        slack = ChatContext(platform="slack", account="U1", place=Place(platform="slack", channel="C0DEV"))
        reply = await app.chat.handle("request rollout restart deployment/api -n prod", slack)
        assert "only in C0PROD" in reply.text and "C0DEV" in reply.text
        assert await app.service.pending() == []
        assert not eu.requests and not us.requests  # refused before anything reached a cluster


async def test_the_http_api_takes_cluster_and_refuses_an_unknown_one(sqlite_database_url: str) -> None:
    async with fleet(sqlite_database_url) as (app, _eu, _us):
        server = TestServer(build_http_app(app))
        await server.start_server()
        try:
            await _http_checks(app, str(server.make_url("")).rstrip("/"))
        finally:
            await server.close()


async def _http_checks(app: App, base: str) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        body = {"action": "rollout restart deployment/api -n prod", "requested_by": "alice", "cluster": "ap-9"}
        async with http.post(f"{base}/api/v1/requests", json=body) as response:
            assert response.status == 422
            error = await response.json()
            assert error["error"] == "unknown_cluster" and "eu-1, us-1" in error["message"]
        assert await app.service.pending() == []
        for cluster in ("us-1", "eu-1"):
            async with http.post(f"{base}/api/v1/requests", json={**body, "cluster": cluster}) as response:
                assert response.status == 201
                created = await response.json()
                assert created["cluster"] == cluster
        async with http.get(f"{base}/api/v1/requests", params={"cluster": "us-1"}) as response:
            page = await response.json()
            assert [item["cluster"] for item in page["items"]] == ["us-1"]
        async with http.get(f"{base}/api/v1/requests", params={"cluster": "eu-1"}) as response:
            page = await response.json()
            assert [item["cluster"] for item in page["items"]] == ["eu-1"]


async def test_alerts_pick_their_cluster_and_an_unknown_one_proposes_nothing(sqlite_database_url: str) -> None:
    async with fleet(sqlite_database_url) as (app, eu, us):
        def crash(pod: str, fingerprint: str, cluster: str | None) -> dict[str, Any]:
            labels = {"namespace": "prod", "pod": pod, "container": "app"}
            if cluster is not None:
                labels["cluster"] = cluster
            return alert("KubePodCrashLooping", labels, fingerprint=fingerprint)

        pod = "api-7c9f8d-p1"
        outcomes = await app.alerts.ingest_alerts(parse_alertmanager(payload(
            crash(pod, "u1", "us-1"), crash(pod, "x1", "ap-9"), crash(pod, "e1", None))))
        by_fingerprint = {o.fingerprint: o for o in outcomes}
        unknown = by_fingerprint["x1"]
        assert unknown.error is not None and "ap-9" in unknown.error and "eu-1, us-1" in unknown.error
        assert unknown.incident_id is None and unknown.request_id is None
        # Incidents are per cluster: the same crash on us-1 and on eu-1 (the default) is two incidents.
        us_outcome, eu_outcome = by_fingerprint["u1"], by_fingerprint["e1"]
        assert us_outcome.incident_id and eu_outcome.incident_id
        assert us_outcome.incident_id != eu_outcome.incident_id
        for outcome, cluster in ((us_outcome, "us-1"), (eu_outcome, "eu-1")):
            assert outcome.request_id is not None, outcome
            assert (await app.service.get(outcome.request_id)).cluster == cluster
        # Each cluster was asked about its own alert's pod.
        assert any(r.path.endswith(f"/pods/{pod}") for r in us.requests)
        assert any(r.path.endswith(f"/pods/{pod}") for r in eu.requests)


async def test_a_cluster_that_does_not_answer_fails_only_its_own_requests(sqlite_database_url: str) -> None:
    async with fleet(sqlite_database_url) as (app, eu, us):
        us.inject("*", r".", status=503, reason="ServiceUnavailable", times=None)
        down = await app.service.request("rollout restart deployment/api -n prod", by=ALICE, via="console",
                                         cluster="us-1")
        assert down.blast is not None and "could not read the cluster" in down.blast.summary()
        up = await app.service.request("rollout restart deployment/api -n prod", by=ALICE, via="console",
                                       cluster="eu-1")
        for request in (down, up):
            current = await app.service.get(request.id)
            while current.status is RequestStatus.pending:
                signer = Person(name=f"signer-{current.signed}")
                current = await app.service.sign(request.id, by=signer, via="console")
        await app.settle()
        assert (await app.service.get(up.id)).status is RequestStatus.succeeded
        ended = await app.service.get(down.id)
        assert ended.status is not RequestStatus.succeeded
        assert ended.outcome is not None
        eu_api = eu.get("Deployment", "prod", "api")
        assert eu_api is not None
        assert "kubectl.kubernetes.io/restartedAt" in (eu_api["spec"]["template"]["metadata"].get("annotations") or {})
        us_api = us.get("Deployment", "prod", "api")
        assert us_api is not None
        assert "kubectl.kubernetes.io/restartedAt" not in (us_api["spec"]["template"]["metadata"].get(
            "annotations") or {})


async def test_the_sandbox_serves_one_cluster_per_policy_cluster(sqlite_database_url: str) -> None:
    settings = make_settings(sqlite_database_url)
    async with bootstrap(settings, policy=parse_policy(POLICY, "fleet.toml"), min_update_interval=0.0) as app:
        assert isinstance(app.cluster, ClusterRegistry)
        assert app.cluster.names == ("eu-1", "us-1") and app.cluster.default == "eu-1"
        request = await app.service.request("scale deployment/web --replicas=4 -n prod on us-1", by=ALICE,
                                            via="console")
        assert request.cluster == "us-1"
        assert request.blast is not None and request.blast.target_found
        with pytest.raises(UnknownCluster, match="eu-1, us-1"):
            await app.service.request("cordon node-1 --context ap-9", by=ALICE, via="console")
    async with bootstrap(settings, policy=Policy(), min_update_interval=0.0) as app:
        assert isinstance(app.cluster, ClusterRegistry) and app.cluster.names == ("sandbox",)
        plain = await app.service.request("cordon node-1", by=ALICE, via="console")
        assert plain.cluster == "sandbox" and plain.operation.cluster is None
        assert plain.operation.command() == "kubectl cordon node-1"


async def test_a_context_the_kubeconfig_lacks_stops_start_up_with_its_line(
        sqlite_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(kubeconfig_for_clusters([("eu-1", "https://127.0.0.1:1", "t"),
                                                   ("us-1", "https://127.0.0.1:2", "t")], b"ca"))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    policy = parse_policy('[clusters.eu-1]\ndefault = true\n\n[clusters.ap-9]\ncontext = "prod-ap-9"\n', "p.toml")
    settings = Settings(SIGNOFF_DATABASE_URL=sqlite_database_url, SIGNOFF_CLUSTER="kubeconfig")
    with pytest.raises(PolicyFileError, match="no context `prod-ap-9`; its contexts are: eu-1, us-1") as caught:
        async with bootstrap(settings, policy=policy):
            pass
    assert caught.value.field == "clusters.ap-9.context"
