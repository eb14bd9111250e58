"""The change a request would make, from a server-side dry run made when it is requested (issue 21, item 1):
the production executor against the sandbox API server, over HTTP, for every kind of operation. A dry run
persists nothing; the lines name the fields as `field: old → new`."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from adapters.kubernetes.executor import KubernetesCluster
from core.domain.cluster import ClusterRejected, ClusterUnavailable, TargetMissing
from core.domain.operations import parse_operation
from testkit.fakes.sandbox import HookedSandbox

pytest_plugins = ("tests.fixtures_kubernetes",)


def hpa(namespace: str, name: str, target: str, low: int, high: int, kind: str = "Deployment") -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
                     "minReplicas": low, "maxReplicas": high,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 70}}}]}}


def writes(sandbox: HookedSandbox) -> list[str]:
    """The calls that were not dry runs and not reads."""
    return [f"{r.method} {r.path}" for r in sandbox.requests if r.method != "GET" and r.query.get("dryRun") != "All"]


async def test_a_scale_shows_the_replicas_before_and_after(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    preview = await cluster.preview(parse_operation("scale deployment/api --replicas=6 -n prod"))
    assert preview.lines == ("replicas: 3 → 6",)
    assert preview.autoscaler is None and preview.warnings == () and preview.unavailable is None
    assert (sandbox.get("Deployment", "prod", "api") or {})["spec"]["replicas"] == 3
    assert any(r.query.get("dryRun") == "All" and r.path.endswith("/deployments/api/scale") for r in sandbox.requests)
    assert writes(sandbox) == []


async def test_a_restart_shows_restarted_at_set(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    preview = await cluster.preview(parse_operation("rollout restart deployment/web -n prod"))
    assert preview.lines == ("restartedAt: set",)
    statefulset = await cluster.preview(parse_operation("rollout restart statefulset/postgres -n prod"))
    assert statefulset.lines == ("restartedAt: set",)
    template = (sandbox.get("Deployment", "prod", "web") or {})["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" not in (template["metadata"].get("annotations") or {})
    assert writes(sandbox) == []


async def test_a_rollback_shows_each_containers_image(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    preview = await cluster.preview(parse_operation("rollout undo deployment/api -n prod"))
    assert preview.lines == ("template: revision 3 → revision 2",
                             "image (api): ghcr.io/acme/api:1.4.2 → ghcr.io/acme/api:1.4.1")
    assert (sandbox.get("Deployment", "prod", "api") or {})["spec"]["template"]["spec"]["containers"][0]["image"] \
        == "ghcr.io/acme/api:1.4.2"
    assert writes(sandbox) == []


async def test_a_rollback_without_a_previous_revision_is_a_definite_refusal(
        sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    sandbox.add_deployments("prod", 1, prefix="single")
    with pytest.raises(ClusterRejected) as refused:
        await cluster.preview(parse_operation("rollout undo deployment/single-0000 -n prod"))
    assert refused.value.reason == "NoPreviousRevision"
    assert "no previous revision" in refused.value.message


async def test_cordon_and_uncordon_show_unschedulable(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    assert (await cluster.preview(parse_operation("cordon node-1"))).lines == ("unschedulable: false → true",)
    assert (await cluster.preview(parse_operation("uncordon node-1"))).lines == ("unschedulable: false (unchanged)",)
    node = sandbox.get("Node", None, "node-2") or {}
    sandbox.put({**node, "spec": {**node["spec"], "unschedulable": True}})
    assert (await cluster.preview(parse_operation("uncordon node-2"))).lines == ("unschedulable: true → false",)
    assert not (sandbox.get("Node", None, "node-1") or {})["spec"].get("unschedulable")
    assert writes(sandbox) == []


async def test_a_pod_delete_names_the_pod_and_who_recreates_it(sandbox: HookedSandbox,
                                                                cluster: KubernetesCluster) -> None:
    pod = sorted(p["metadata"]["name"] for p in sandbox.objects("pod", "prod", "app=web"))[0]
    preview = await cluster.preview(parse_operation(f"delete pod {pod} -n prod"))
    assert preview.lines == (f"pod {pod}: deleted (deployment/web recreates it)",)
    assert sandbox.get("Pod", "prod", pod) is not None
    assert writes(sandbox) == []


async def test_a_drain_lists_the_evictions_and_the_budgets_that_would_block(
        sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    pods = sandbox.objects("pod", None)
    node = next(p["spec"]["nodeName"] for p in pods if p["metadata"]["labels"].get("app") == "api")
    on_node = [p for p in pods if p["spec"].get("nodeName") == node]
    api_here = [p for p in on_node if p["metadata"]["labels"].get("app") == "api"]
    sandbox.put({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                 "metadata": {"name": "api-pdb", "namespace": "prod"},
                 "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "api"}}}})
    preview = await cluster.preview(parse_operation(f"drain {node}"))
    lines = preview.lines
    assert lines[0] == "unschedulable: false → true"
    evicted = [line for line in lines if line.startswith("evicts ")]
    for pod in api_here:
        assert f"evicts prod/{pod['metadata']['name']} (deployment/api)" in evicted
    assert not any("node-exporter" in line or "kube-proxy" in line for line in evicted)  # DaemonSet pods stay
    assert any(line.startswith("blocked by PodDisruptionBudget prod/api-pdb (allows 0 disruption(s) now")
               for line in lines), lines
    assert writes(sandbox) == []


async def test_a_missing_target_is_not_found(cluster: KubernetesCluster) -> None:
    with pytest.raises(TargetMissing):
        await cluster.preview(parse_operation("scale deployment/ghost --replicas=2 -n prod"))
    with pytest.raises(TargetMissing):
        await cluster.preview(parse_operation("cordon node-9"))


async def test_an_invalid_dry_run_is_a_definite_refusal(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    sandbox.inject("PATCH", r"/deployments/web/scale$", 422, "Invalid",
                   message='Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: 6: must be at most 5')
    with pytest.raises(ClusterRejected) as refused:
        await cluster.preview(parse_operation("scale deployment/web --replicas=6 -n prod"))
    assert "must be at most 5" in refused.value.message


async def test_a_transient_failure_is_unavailable(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    sandbox.inject("PATCH", r"/deployments/web/scale$", 503, "ServiceUnavailable", times=None)
    with pytest.raises(ClusterUnavailable):
        await cluster.preview(parse_operation("scale deployment/web --replicas=4 -n prod"))


# ---- who else manages the target


async def test_an_autoscaled_target_names_its_hpa(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    sandbox.put(hpa("prod", "api-hpa", "api", 3, 10))
    sandbox.put(hpa("prod", "web-hpa", "web", 2, 4, kind="StatefulSet"))  # another kind: not web's
    scale = await cluster.preview(parse_operation("scale deployment/api --replicas=20 -n prod"))
    assert scale.autoscaler is not None
    assert (scale.autoscaler.name, scale.autoscaler.min_replicas, scale.autoscaler.max_replicas) == ("api-hpa", 3, 10)
    restart = await cluster.preview(parse_operation("rollout restart deployment/api -n prod"))
    assert restart.warnings == ("autoscaled by HorizontalPodAutoscaler api-hpa (min 3, max 10): its replica count "
                                "is the HPA's to set",)
    assert (await cluster.preview(parse_operation("scale deployment/web --replicas=3 -n prod"))).autoscaler is None


async def test_gitops_and_helm_targets_are_named(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    web = sandbox.get("Deployment", "prod", "web") or {}
    web["metadata"]["labels"]["argocd.argoproj.io/instance"] = "shop"
    sandbox.put(web)
    worker = sandbox.get("Deployment", "prod", "worker") or {}
    worker["metadata"]["labels"].update({"kustomize.toolkit.fluxcd.io/name": "apps",
                                         "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
                                         "app.kubernetes.io/managed-by": "Helm"})
    worker["metadata"]["annotations"] = {"meta.helm.sh/release-name": "worker"}
    sandbox.put(worker)
    staging = sandbox.get("Deployment", "staging", "api") or {}
    staging["metadata"]["annotations"] = {"argocd.argoproj.io/tracking-id": "api-staging:apps/Deployment:staging/api"}
    sandbox.put(staging)

    assert (await cluster.preview(parse_operation("scale deployment/web --replicas=3 -n prod"))).warnings == (
        "managed by Argo CD application shop: a sync may revert a scale or rollback",)
    assert (await cluster.preview(parse_operation("rollout restart deployment/worker -n prod"))).warnings == (
        "managed by Flux Kustomization flux-system/apps: a sync may revert a scale or rollback",
        "managed by Helm release worker: a `helm upgrade` may revert a scale or rollback")
    assert (await cluster.preview(parse_operation("scale deployment/api --replicas=2 -n staging"))).warnings == (
        "managed by Argo CD application api-staging: a sync may revert a scale or rollback",)


def test_the_sandbox_serves_autoscaling_v2(api_client: client.ApiClient, sandbox: HookedSandbox) -> None:
    """list/get/create of HorizontalPodAutoscalers through the official client, as a real API server."""
    api = client.AutoscalingV2Api(api_client)
    body = hpa("prod", "api-hpa", "api", 3, 10)
    api.create_namespaced_horizontal_pod_autoscaler("prod", body, dry_run="All")
    assert api.list_namespaced_horizontal_pod_autoscaler("prod").items == []  # a dry run stores nothing
    created = api.create_namespaced_horizontal_pod_autoscaler("prod", body)
    assert created.metadata.uid and created.spec.max_replicas == 10
    assert api.read_namespaced_horizontal_pod_autoscaler("api-hpa", "prod").spec.min_replicas == 3
    assert [h.metadata.name for h in api.list_namespaced_horizontal_pod_autoscaler("prod").items] == ["api-hpa"]
    with pytest.raises(client.ApiException) as twice:
        api.create_namespaced_horizontal_pod_autoscaler("prod", body)
    assert twice.value.status == 409
    with pytest.raises(client.ApiException) as v1:
        client.AutoscalingV1Api(api_client).list_namespaced_horizontal_pod_autoscaler("prod")
    assert v1.value.status == 404  # only autoscaling/v2 is served
