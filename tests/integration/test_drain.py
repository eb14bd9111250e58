"""`drain node-1` end to end against the sandbox: cordon, evictions through the Eviction API,
PodDisruptionBudgets that block (429) and then allow, DaemonSet pods left alone, the dry run
and the blast radius. The official client and the production executor, no mocks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from adapters.kubernetes.executor import KubernetesCluster
from core.domain.blast import assess
from core.domain.cluster import ClusterRejected, TargetMissing
from core.domain.operations import DrainOp, parse_operation
from core.domain.policy import Policy, Risk
from testkit.fakes.sandbox import HookedSandbox

pytest_plugins = ("tests.fixtures_kubernetes",)

DRAIN = DrainOp(name="node-1")


def _on_node(sandbox: HookedSandbox, node: str) -> dict[str, dict[str, Any]]:
    return {
        f"{p['metadata']['namespace']}/{p['metadata']['name']}": p
        for p in sandbox.objects("pod")
        if p["spec"].get("nodeName") == node
    }


def _owner_kind(pod: dict[str, Any]) -> str:
    refs = pod["metadata"].get("ownerReferences") or []
    return str(refs[0]["kind"]) if refs else ""


def _budget(name: str, namespace: str, labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": labels}, **spec},
    }


@pytest.fixture
def drainer(sandbox: HookedSandbox) -> Iterator[KubernetesCluster]:
    """A drain that asks again quickly after a 429, with a deadline far beyond any test's run."""
    executor = KubernetesCluster.for_url(sandbox.url, sandbox.token, request_timeout=5.0,
                                         drain_timeout=120.0, drain_retry=0.01)
    try:
        yield executor
    finally:
        executor.close()


def test_drain_is_high_risk_and_parses_from_kubectl() -> None:
    assert parse_operation("kubectl drain node-1 --ignore-daemonsets") == DRAIN
    assert Policy().risk_floor(DRAIN, None) is Risk.high


async def test_the_blast_radius_lists_the_pods_to_evict_and_their_owners(cluster: KubernetesCluster,
                                                                           sandbox: HookedSandbox) -> None:
    facts = await cluster.inspect(DRAIN)
    on_node = _on_node(sandbox, "node-1")
    evictable = sorted(k for k, p in on_node.items() if _owner_kind(p) != "DaemonSet")
    assert [e.split(" ")[0] for e in facts.evictions] == evictable
    owners = dict(e.split(" ", 1) for e in facts.evictions)
    assert owners[next(k for k in evictable if k.startswith("prod/web-"))] == "(deployment/web)"
    assert owners["prod/postgres-0"] == "(statefulset/postgres)"
    summary = assess(DRAIN, facts).summary()
    assert "evicts: " in summary and "prod/postgres-0 (statefulset/postgres)" in summary
    assert "kube-proxy" not in summary and "node-exporter" not in summary


async def test_the_dry_run_lists_what_would_be_evicted_and_changes_nothing(cluster: KubernetesCluster,
                                                                           sandbox: HookedSandbox,
                                                                           snapshot: Any) -> None:
    before = snapshot()
    result = await cluster.apply(DRAIN, dry_run=True)
    assert result.summary.startswith("dry run: node/node-1 would be cordoned and 4 pod(s) evicted: ")
    assert "prod/postgres-0" in result.summary and "2 DaemonSet or mirror pod(s) stay" in result.summary
    assert snapshot() == before


async def test_drain_cordons_evicts_and_leaves_daemonset_pods(drainer: KubernetesCluster,
                                                              sandbox: HookedSandbox) -> None:
    result = await drainer.apply(DRAIN, dry_run=False)
    assert result.summary == "node/node-1 drained: 4 pod(s) evicted; 2 DaemonSet or mirror pod(s) stay"
    node = sandbox.get("node", None, "node-1")
    assert node is not None and node["spec"]["unschedulable"] is True
    left = _on_node(sandbox, "node-1")
    assert {_owner_kind(p) for p in left.values()} == {"DaemonSet"}
    assert await drainer.evictable_pods("node-1") == ()
    # The controllers replaced the evicted pods elsewhere: web still has its two replicas.
    assert len(sandbox.objects("pod", "prod", "app=web")) == 2
    evictions = [r for r in sandbox.requests if r.method == "POST" and r.path.endswith("/eviction")]
    assert len(evictions) == 4  # one per evicted pod: none for the DaemonSet pods


async def test_a_budget_that_blocks_is_retried_until_it_allows(drainer: KubernetesCluster,
                                                               sandbox: HookedSandbox) -> None:
    # web has two replicas and the budget wants both: evicting web's pod on node-1 answers 429.
    sandbox.put(_budget("web", "prod", {"app": "web"}, minAvailable=2))
    refused: list[int] = []

    def relax_after_two_refusals(box: HookedSandbox) -> None:
        refused.append(1)
        if len(refused) == 4:  # the dry run's refusal, then two real ones: now the budget is relaxed
            box.put(_budget("web", "prod", {"app": "web"}, minAvailable=1))

    sandbox.on_request("POST", r"/namespaces/prod/pods/web-[^/]+/eviction$", relax_after_two_refusals, times=None)
    dry = await drainer.apply(DRAIN, dry_run=True)
    assert "a PodDisruptionBudget holds back prod/web-" in dry.summary
    result = await drainer.apply(DRAIN, dry_run=False)
    assert result.summary.startswith("node/node-1 drained: 4 pod(s) evicted")
    assert len(refused) == 4
    assert await drainer.evictable_pods("node-1") == ()


async def test_a_budget_that_never_allows_fails_at_the_deadline(sandbox: HookedSandbox) -> None:
    sandbox.put(_budget("web", "prod", {"app": "web"}, maxUnavailable=0))
    executor = KubernetesCluster.for_url(sandbox.url, sandbox.token, drain_timeout=0.2, drain_retry=0.01)
    try:
        with pytest.raises(ClusterRejected) as caught:
            await executor.apply(DRAIN, dry_run=False)
        left = await executor.evictable_pods("node-1")
    finally:
        executor.close()
    assert caught.value.reason == "TooManyRequests"
    assert "a PodDisruptionBudget still refuses to evict prod/web-" in caught.value.message
    assert "3 pod(s) were evicted" in caught.value.message
    assert len(left) == 1 and left[0].startswith("prod/web-")
    node = sandbox.get("node", None, "node-1")
    assert node is not None and node["spec"]["unschedulable"] is True


async def test_draining_a_missing_node_is_target_missing(cluster: KubernetesCluster) -> None:
    with pytest.raises(TargetMissing):
        await cluster.apply(DrainOp(name="node-9"), dry_run=True)
    assert not (await cluster.inspect(DrainOp(name="node-9"))).exists


# ---- the sandbox's Eviction API and PodDisruptionBudgets, as the client sees them


def _web_pod_on_node_1(sandbox: HookedSandbox) -> str:
    return next(k for k in _on_node(sandbox, "node-1") if k.startswith("prod/web-")).split("/")[1]


def _eviction(name: str, namespace: str = "prod") -> client.V1Eviction:
    return client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))


def test_an_eviction_that_violates_the_budget_is_429_with_the_budget_named(core: client.CoreV1Api,
                                                                           sandbox: HookedSandbox) -> None:
    sandbox.put(_budget("web", "prod", {"app": "web"}, minAvailable="100%"))
    status = client.PolicyV1Api(core.api_client).read_namespaced_pod_disruption_budget("web", "prod").status
    assert (status.expected_pods, status.current_healthy, status.desired_healthy, status.disruptions_allowed) == (
        2, 2, 2, 0)
    name = _web_pod_on_node_1(sandbox)
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_pod_eviction(name, "prod", _eviction(name))
    assert caught.value.status == 429
    assert "TooManyRequests" in str(caught.value.body) and "The disruption budget web needs 2 healthy pods" in str(
        caught.value.body)
    assert sandbox.get("pod", "prod", name) is not None


def test_an_allowed_eviction_deletes_the_pod_and_a_dry_run_does_not(core: client.CoreV1Api,
                                                                    sandbox: HookedSandbox) -> None:
    sandbox.put(_budget("web", "prod", {"app": "web"}, maxUnavailable="50%"))
    name = _web_pod_on_node_1(sandbox)
    core.create_namespaced_pod_eviction(name, "prod", _eviction(name), dry_run="All")
    assert sandbox.get("pod", "prod", name) is not None
    core.create_namespaced_pod_eviction(name, "prod", _eviction(name))
    assert sandbox.get("pod", "prod", name) is None
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_pod_eviction(name, "prod", _eviction(name))
    assert caught.value.status == 404


