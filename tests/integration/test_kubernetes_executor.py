"""The production executor against the sandbox API server, over HTTP, with the official client.

No mocks: faults, delays and concurrent writers are injected into the sandbox itself.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from adapters.kubernetes.executor import KubernetesCluster
from core.domain.cluster import ClusterRejected, ClusterUnavailable, TargetMissing
from core.domain.operations import parse_operation
from testkit.fakes.sandbox import HookedSandbox

pytest_plugins = ("tests.fixtures_kubernetes",)

Snapshot = Callable[[], dict[str, list[dict[str, Any]]]]
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"


def _pods(sandbox: HookedSandbox, namespace: str, selector: str) -> list[dict[str, Any]]:
    return sandbox.objects("pod", namespace, selector)


def _names(objects: list[dict[str, Any]]) -> set[str]:
    return {o["metadata"]["name"] for o in objects}


def _image(obj: dict[str, Any] | None) -> str:
    assert obj is not None
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def _touch(name: str, namespace: str = "prod") -> Callable[[HookedSandbox], None]:
    """A concurrent writer: changes the deployment's metadata, so its resourceVersion moves on."""

    def touch(sandbox: HookedSandbox) -> None:
        deployment = sandbox.get("deployment", namespace, name)
        assert deployment is not None
        deployment["metadata"].setdefault("labels", {})["touched"] = str(sandbox.resource_version)
        sandbox.put(deployment)

    return touch


# ---- reaching the cluster


async def test_check_returns_the_server_version(cluster: KubernetesCluster) -> None:
    assert await cluster.check() == "v1.31.0"


async def test_check_on_a_stopped_server_is_unavailable(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    sandbox.stop()
    with pytest.raises(ClusterUnavailable) as caught:
        await cluster.check()
    assert caught.value.reason == "ConnectionFailed"
    assert "Could not connect" in caught.value.message


async def test_from_kubeconfig_reaches_the_sandbox(sandbox: HookedSandbox, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        f"""
apiVersion: v1
kind: Config
clusters:
- name: sandbox
  cluster: {{server: "{sandbox.url}"}}
- name: elsewhere
  cluster: {{server: "http://127.0.0.1:9"}}
users:
- name: bot
  user: {{token: {sandbox.token}}}
contexts:
- name: sandbox
  context: {{cluster: sandbox, user: bot}}
- name: elsewhere
  context: {{cluster: elsewhere, user: bot}}
current-context: elsewhere
"""
    )
    executor = KubernetesCluster.from_kubeconfig(str(kubeconfig), context="sandbox", request_timeout=2.0)
    try:
        assert await executor.check() == "v1.31.0"
    finally:
        executor.close()


async def test_one_executor_per_context_each_sees_its_own_cluster(sandbox: HookedSandbox, tmp_path: Path) -> None:
    """Several clusters are several executors, one kubeconfig context each, with nothing shared: a write
    through one changes only its cluster, and its facts cache is its own."""
    other = HookedSandbox(token="other-token")
    other.start()
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        f"""
apiVersion: v1
kind: Config
clusters:
- {{name: eu, cluster: {{server: "{sandbox.url}"}}}}
- {{name: us, cluster: {{server: "{other.url}"}}}}
users:
- {{name: eu-bot, user: {{token: {sandbox.token}}}}}
- {{name: us-bot, user: {{token: other-token}}}}
contexts:
- {{name: prod-eu-1, context: {{cluster: eu, user: eu-bot}}}}
- {{name: prod-us-1, context: {{cluster: us, user: us-bot}}}}
current-context: prod-eu-1
"""
    )
    eu = KubernetesCluster.from_kubeconfig(str(kubeconfig), context="prod-eu-1", request_timeout=2.0)
    us = KubernetesCluster.from_kubeconfig(str(kubeconfig), context="prod-us-1", request_timeout=2.0)
    try:
        assert (eu.name, us.name) == ("prod-eu-1", "prod-us-1")
        scale = parse_operation("scale deployment/web --replicas=5 -n prod")
        assert (await eu.inspect(scale)).replicas == 2
        assert (await us.inspect(scale)).replicas == 2
        await us.apply(scale, dry_run=False)
        assert (await us.inspect(scale)).replicas == 5
        assert (await eu.inspect(scale, fresh=True)).replicas == 2
        web = sandbox.get("deployment", "prod", "web")
        assert web is not None and web["spec"]["replicas"] == 2  # the write went to the other cluster only
        assert [r.method for r in sandbox.requests if r.method != "GET"] == []
    finally:
        eu.close()
        us.close()
        other.stop()


def test_without_any_configuration_the_error_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ClusterUnavailable) as caught:
        KubernetesCluster.from_kubeconfig()
    assert "KUBECONFIG" in caught.value.message


# ---- every operation works


async def test_restart_deployment_bumps_generation_and_replaces_pods(
    sandbox: HookedSandbox, cluster: KubernetesCluster
) -> None:
    before = sandbox.get("deployment", "prod", "api")
    assert before is not None
    old_pods = _names(_pods(sandbox, "prod", "app=api"))
    result = await cluster.apply(parse_operation("rollout restart deployment/api -n prod"), dry_run=False)
    after = sandbox.get("deployment", "prod", "api")
    assert after is not None
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert result.generation == after["metadata"]["generation"]
    assert result.summary == f"deployment/api restarted (generation {result.generation})"
    assert int(result.resource_version or 0) > int(before["metadata"]["resourceVersion"])
    restarted_at = after["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    assert restarted_at.endswith("Z") and "T" in restarted_at
    assert after["metadata"]["annotations"][REVISION] == "4"
    new_pods = _pods(sandbox, "prod", "app=api")
    assert len(new_pods) == 3 and not old_pods & _names(new_pods)
    assert all(p["metadata"]["annotations"][RESTARTED_AT] == restarted_at for p in new_pods)


@pytest.mark.parametrize(
    ("text", "kind", "namespace", "name", "selector"),
    [
        ("rollout restart statefulset/postgres -n prod", "statefulset", "prod", "postgres", "app=postgres"),
        (
            "restart daemonset node-exporter in monitoring",
            "daemonset",
            "monitoring",
            "node-exporter",
            "app.kubernetes.io/name=node-exporter",
        ),
    ],
)
async def test_restart_statefulset_and_daemonset(
    sandbox: HookedSandbox,
    cluster: KubernetesCluster,
    text: str,
    kind: str,
    namespace: str,
    name: str,
    selector: str,
) -> None:
    old_uids = {p["metadata"]["uid"] for p in _pods(sandbox, namespace, selector)}
    result = await cluster.apply(parse_operation(text), dry_run=False)
    workload = sandbox.get(kind, namespace, name)
    assert workload is not None
    assert result.generation == workload["metadata"]["generation"] == 2
    assert RESTARTED_AT in workload["spec"]["template"]["metadata"]["annotations"]
    pods = _pods(sandbox, namespace, selector)
    assert len(pods) == len(old_uids)
    assert not old_uids & {p["metadata"]["uid"] for p in pods}, "every pod was replaced"


async def test_scale_changes_replicas_and_pods(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    result = await cluster.apply(parse_operation("scale deployment/web --replicas=5 -n prod"), dry_run=False)
    assert result.summary == "deployment/web scaled to 5 replicas (2 running before)"
    web = sandbox.get("deployment", "prod", "web")
    assert web is not None and web["spec"]["replicas"] == 5
    assert web["status"]["readyReplicas"] == 5
    assert len(_pods(sandbox, "prod", "app=web")) == 5
    await cluster.apply(parse_operation("scale deployment web to 0 in prod"), dry_run=False)
    assert _pods(sandbox, "prod", "app=web") == []
    await cluster.apply(parse_operation("scale statefulset/postgres --replicas=2 -n prod"), dry_run=False)
    assert _names(_pods(sandbox, "prod", "app=postgres")) == {"postgres-0", "postgres-1"}
    assert sandbox.get("persistentvolumeclaim", "prod", "data-postgres-1") is not None


async def test_rollback_restores_the_previous_template(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    replica_sets = _names(sandbox.objects("replicaset", "prod", "app=api"))
    result = await cluster.apply(parse_operation("rollout undo deployment/api -n prod"), dry_run=False)
    api = sandbox.get("deployment", "prod", "api")
    assert _image(api) == "ghcr.io/acme/api:1.4.1"
    assert api is not None and "pod-template-hash" not in api["spec"]["template"]["metadata"]["labels"]
    assert api["metadata"]["annotations"]["kubernetes.io/change-cause"] == "deploy 1.4.1"
    assert result.summary.startswith("deployment/api rolled back to revision 2 (ghcr.io/acme/api:1.4.1")
    assert result.generation == api["metadata"]["generation"] == 4
    # Like a real rollback: the old ReplicaSet is reused under a new revision, no new one appears.
    assert _names(sandbox.objects("replicaset", "prod", "app=api")) == replica_sets
    assert api["metadata"]["annotations"][REVISION] == "4"
    pods = _pods(sandbox, "prod", "app=api")
    assert len(pods) == 3
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"ghcr.io/acme/api:1.4.1"}
    # A second undo goes back to what was current before the first (revision 3, image 1.4.2).
    await cluster.apply(parse_operation("rollout undo deployment/api -n prod"), dry_run=False)
    assert _image(sandbox.get("deployment", "prod", "api")) == "ghcr.io/acme/api:1.4.2"


async def test_rollback_without_history_is_rejected(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    with pytest.raises(ClusterRejected) as caught:
        await cluster.apply(parse_operation("rollout undo deployment/worker -n prod"), dry_run=False)
    assert caught.value.reason == "NoPreviousRevision"
    assert "no previous revision" in caught.value.message


async def test_rollback_of_a_paused_deployment_is_rejected(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    api = sandbox.get("deployment", "prod", "api")
    assert api is not None
    api["spec"]["paused"] = True
    sandbox.put(api)
    with pytest.raises(ClusterRejected) as caught:
        await cluster.apply(parse_operation("rollout undo deployment/api -n prod"), dry_run=True)
    assert caught.value.reason == "DeploymentPaused"


async def test_delete_pod_and_a_replacement_appears(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    victim = sorted(_names(_pods(sandbox, "prod", "app=web")))[0]
    sandbox.clear_requests()
    result = await cluster.apply(parse_operation(f"delete pod {victim} -n prod"), dry_run=False)
    assert result.summary == f"pod/{victim} deleted (30s grace period)"
    assert ("DELETE", f"/api/v1/namespaces/prod/pods/{victim}", {}) in sandbox.requests
    pods = _names(_pods(sandbox, "prod", "app=web"))
    assert victim not in pods and len(pods) == 2


async def test_cordon_and_uncordon(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    result = await cluster.apply(parse_operation("cordon node-2"), dry_run=False)
    assert result.summary == "node/node-2 cordoned"
    node = sandbox.get("node", None, "node-2")
    assert node is not None and node["spec"]["unschedulable"] is True
    again = await cluster.apply(parse_operation("cordon node node-2"), dry_run=False)
    assert again.summary == "node/node-2 is already cordoned; nothing changed"
    assert (await cluster.apply(parse_operation("uncordon node-2"), dry_run=False)).summary == "node/node-2 uncordoned"
    node = sandbox.get("node", None, "node-2")
    assert node is not None and not node["spec"].get("unschedulable")
    assert not node["spec"].get("taints")


# ---- dry run changes nothing, for every operation

EVERY_OPERATION = [
    "rollout restart deployment/api -n prod",
    "rollout restart statefulset/postgres -n prod",
    "rollout restart daemonset/kube-proxy -n kube-system",
    "scale deployment/web --replicas=4 -n prod",
    "scale statefulset/postgres --replicas=0 -n prod",
    "rollout undo deployment/api -n prod",
    "delete pod postgres-0 -n prod",
    "cordon node-1",
]


@pytest.mark.parametrize("text", EVERY_OPERATION)
async def test_dry_run_persists_nothing(
    sandbox: HookedSandbox, cluster: KubernetesCluster, snapshot: Snapshot, text: str
) -> None:
    before = snapshot()
    version = sandbox.resource_version
    sandbox.clear_requests()
    result = await cluster.apply(parse_operation(text), dry_run=True)
    assert result.summary.startswith("dry run: ")
    assert snapshot() == before
    assert sandbox.resource_version == version
    writes = [r for r in sandbox.requests if r.method in ("PATCH", "DELETE", "PUT", "POST")]
    assert writes and all(r.query == {"dryRun": "All"} for r in writes)


async def test_uncordon_dry_run_persists_nothing(
    sandbox: HookedSandbox, cluster: KubernetesCluster, snapshot: Snapshot
) -> None:
    await cluster.apply(parse_operation("cordon node-3"), dry_run=False)
    before = snapshot()
    result = await cluster.apply(parse_operation("uncordon node-3"), dry_run=True)
    assert result.summary == "dry run: node/node-3 would be uncordoned"
    assert snapshot() == before


# ---- a missing target


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rollout restart deployment/nope -n prod", "deployment/nope not found in namespace prod"),
        ("rollout restart statefulset/nope -n prod", "statefulset/nope not found in namespace prod"),
        ("rollout restart daemonset/nope -n prod", "daemonset/nope not found in namespace prod"),
        ("scale deployment/nope --replicas=2 -n prod", "deployment/nope not found in namespace prod"),
        ("scale statefulset/nope --replicas=2 -n prod", "statefulset/nope not found in namespace prod"),
        ("rollout undo deployment/nope -n prod", "deployment/nope not found in namespace prod"),
        ("delete pod nope -n prod", "pod/nope not found in namespace prod"),
        ("cordon node-9", "node/node-9 not found"),
        ("uncordon node-9", "node/node-9 not found"),
        ("rollout restart deployment/api -n nowhere", "deployment/api not found in namespace nowhere"),
    ],
)
@pytest.mark.parametrize("dry_run", [True, False])
async def test_missing_target(
    cluster: KubernetesCluster, snapshot: Snapshot, text: str, message: str, dry_run: bool
) -> None:
    before = snapshot()
    op = parse_operation(text)
    with pytest.raises(TargetMissing) as caught:
        await cluster.apply(op, dry_run=dry_run)
    assert caught.value.message == message
    assert (caught.value.reason, caught.value.status) == ("NotFound", 404)
    assert snapshot() == before
    facts = await cluster.inspect(op)
    assert not facts.exists
    assert facts.note == message


# ---- conflicts


def test_a_stale_resource_version_gets_409_from_the_api(apps: client.AppsV1Api) -> None:
    read = apps.read_namespaced_deployment("api", "prod")
    apps.patch_namespaced_deployment("api", "prod", {"metadata": {"labels": {"moved": "on"}}})
    stale = {"metadata": {"resourceVersion": read.metadata.resource_version}, "spec": {"replicas": 4}}
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment("api", "prod", stale)
    assert caught.value.status == 409
    assert '"reason": "Conflict"' in (caught.value.body or "")


async def test_rollback_retries_after_a_concurrent_change(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    sandbox.on_request("PATCH", r"/deployments/api$", _touch("api"), times=1)
    sandbox.clear_requests()
    result = await cluster.apply(parse_operation("rollout undo deployment/api -n prod"), dry_run=False)
    assert "revision 2" in result.summary
    api = sandbox.get("deployment", "prod", "api")
    assert _image(api) == "ghcr.io/acme/api:1.4.1"
    assert api is not None and api["metadata"]["labels"]["touched"], "the concurrent change is kept"
    patches = [r for r in sandbox.requests if r.method == "PATCH"]
    assert len(patches) == 2, "one 409, then one successful retry"


async def test_persistent_conflicts_end_as_rejected_conflict(
    sandbox: HookedSandbox, cluster: KubernetesCluster
) -> None:
    sandbox.on_request("PATCH", r"/deployments/api$", _touch("api"), times=None)
    sandbox.clear_requests()
    with pytest.raises(ClusterRejected) as caught:
        await cluster.apply(parse_operation("rollout undo deployment/api -n prod"), dry_run=False)
    assert (caught.value.reason, caught.value.status) == ("Conflict", 409)
    assert "kept changing" in caught.value.message
    assert _image(sandbox.get("deployment", "prod", "api")) == "ghcr.io/acme/api:1.4.2"
    assert len([r for r in sandbox.requests if r.method == "PATCH"]) == 4, "the first try and 3 retries"


async def test_a_conflict_on_another_operation_is_rejected(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    sandbox.inject("PATCH", r"/deployments/web/scale$", status=409, reason="Conflict", message="busy")
    with pytest.raises(ClusterRejected) as caught:
        await cluster.apply(parse_operation("scale deployment/web --replicas=3 -n prod"), dry_run=False)
    assert (caught.value.reason, caught.value.status) == ("Conflict", 409)


# ---- unavailability and refusals


def _quick_retries(sandbox: HookedSandbox, retries: int = 4) -> KubernetesCluster:
    return KubernetesCluster.for_url(sandbox.url, sandbox.token, retry_delays=(0.01,) * retries)


async def test_a_500_that_persists_is_unavailable_with_an_unknown_outcome(sandbox: HookedSandbox) -> None:
    cluster = _quick_retries(sandbox)
    try:
        sandbox.inject("PATCH", r"/deployments/api$", status=500, reason="InternalError", message="etcd is sad",
                       times=None)
        sandbox.clear_requests()
        with pytest.raises(ClusterUnavailable) as caught:
            await cluster.apply(parse_operation("rollout restart deployment/api -n prod"), dry_run=False)
        assert (caught.value.reason, caught.value.status) == ("InternalError", 500)
        assert "etcd is sad" in caught.value.message
        assert "unknown" in caught.value.message
        assert len([r for r in sandbox.requests if r.method == "PATCH"]) == 5, "the first try and 4 retries"
        sandbox.clear_faults()
        await cluster.apply(parse_operation("rollout restart deployment/api -n prod"), dry_run=False)
    finally:
        cluster.close()


@pytest.mark.parametrize("action", [
    "rollout restart deployment/api -n prod", "scale deployment/web --replicas=4 -n prod", "cordon node-1",
])
async def test_a_transient_500_on_a_safe_real_call_is_retried_once_applied(
    sandbox: HookedSandbox, action: str
) -> None:
    cluster = _quick_retries(sandbox)
    try:
        op = parse_operation(action)
        path = {"restart": r"/deployments/api$", "scale": r"/deployments/web/scale$", "cordon": r"/nodes/node-1$"}
        before = sandbox.get("deployment", "prod", "api")
        sandbox.inject("PATCH", path[op.kind], status=503, reason="ServiceUnavailable", times=2)
        result = await cluster.apply(op, dry_run=False)
        assert "dry run" not in result.summary
        if op.kind == "restart":
            after = sandbox.get("deployment", "prod", "api")
            assert before is not None and after is not None
            assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1, "one rollout"
    finally:
        cluster.close()


async def test_a_rollback_is_not_retried_after_a_500(sandbox: HookedSandbox) -> None:
    cluster = _quick_retries(sandbox)
    try:
        sandbox.inject("PATCH", r"/deployments/api$", status=500, reason="InternalError", times=1)
        sandbox.clear_requests()
        with pytest.raises(ClusterUnavailable):
            await cluster.apply(parse_operation("rollout undo deployment/api -n prod"), dry_run=False)
        assert len([r for r in sandbox.requests if r.method == "PATCH"]) == 1
    finally:
        cluster.close()


async def test_a_delete_retried_after_its_answer_was_lost_is_done(sandbox: HookedSandbox) -> None:
    cluster = KubernetesCluster.for_url(sandbox.url, sandbox.token, request_timeout=0.3, retry_delays=(0.5,))
    try:
        pod = next(p["metadata"]["name"] for p in sandbox.objects("pod", "prod") if
                   p["metadata"]["name"].startswith("web-"))
        # The delete is served, but only after the client gave up: the retry then finds the pod gone.
        sandbox.inject("DELETE", rf"/pods/{pod}$", status=None, delay=1.0, times=1)
        result = await cluster.apply(parse_operation(f"delete pod {pod} -n prod"), dry_run=False)
        assert "deleted" in result.summary
    finally:
        cluster.close()


async def test_a_failed_read_before_the_write_says_nothing_changed(
    sandbox: HookedSandbox, cluster: KubernetesCluster
) -> None:
    cluster = _quick_retries(sandbox)
    sandbox.inject("GET", r"/deployments/api$", status=503, reason="ServiceUnavailable", times=None)
    with pytest.raises(ClusterUnavailable) as caught:
        await cluster.apply(parse_operation("rollout undo deployment/api -n prod"), dry_run=False)
    cluster.close()
    assert caught.value.status == 503
    assert "Nothing was changed" in caught.value.message


async def test_a_timeout_is_unavailable(sandbox: HookedSandbox) -> None:
    executor = KubernetesCluster.for_url(sandbox.url, sandbox.token, request_timeout=0.3, retry_delays=())
    try:
        sandbox.inject("PATCH", r"/deployments/api$", status=None, delay=3.0)
        started = time.monotonic()
        with pytest.raises(ClusterUnavailable) as caught:
            await executor.apply(parse_operation("rollout restart deployment/api -n prod"), dry_run=False)
        assert time.monotonic() - started < 2
        assert caught.value.reason == "Timeout"
        assert "did not answer within 0.3 s" in caught.value.message
        assert "unknown" in caught.value.message
        sandbox.inject("GET", r"/deployments/web$", status=None, delay=3.0)
        with pytest.raises(ClusterUnavailable) as caught:
            await executor.inspect(parse_operation("restart deployment web in prod"))
        assert "while trying to read deployment/web in prod" in caught.value.message
    finally:
        executor.close()


async def test_forbidden_is_rejected(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    message = 'nodes "node-1" is forbidden: User "system:serviceaccount:ops:signoff" cannot patch resource "nodes"'
    sandbox.inject("PATCH", r"/nodes/node-1$", status=403, reason="Forbidden", message=message)
    with pytest.raises(ClusterRejected) as caught:
        await cluster.apply(parse_operation("cordon node-1"), dry_run=True)
    assert (caught.value.reason, caught.value.status) == ("Forbidden", 403)
    assert message in caught.value.message


async def test_invalid_is_rejected_with_its_causes(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    # Corrupt revision 2's template so restoring it breaks the deployment's selector: a real 422.
    old = next(
        rs for rs in sandbox.objects("replicaset", "prod", "app=api") if rs["metadata"]["annotations"][REVISION] == "2"
    )
    old["spec"]["template"]["metadata"]["labels"]["app"] = "api-legacy"
    sandbox.put(old)
    with pytest.raises(ClusterRejected) as caught:
        await cluster.apply(parse_operation("rollout undo deployment/api -n prod"), dry_run=True)
    assert (caught.value.reason, caught.value.status) == ("Invalid", 422)
    assert "spec.template.metadata.labels" in caught.value.message
    assert "`selector` does not match template `labels`" in caught.value.message


# ---- inspect: the facts behind the blast radius


async def test_inspect_a_deployment(cluster: KubernetesCluster, sandbox: HookedSandbox) -> None:
    facts = await cluster.inspect(parse_operation("rollout restart deployment/api -n prod"))
    assert facts.exists
    assert (facts.replicas, facts.ready_replicas) == (3, 3)
    assert facts.pods == tuple(sorted(_names(_pods(sandbox, "prod", "app=api"))))
    assert len(facts.pods) == 3
    assert facts.services == ("api",)
    assert not facts.stateful and facts.volumes == ()


async def test_inspect_a_statefulset(cluster: KubernetesCluster) -> None:
    facts = await cluster.inspect(parse_operation("scale statefulset/postgres --replicas=0 -n prod"))
    assert facts.stateful
    assert facts.volumes == ("data-postgres-0",)
    assert facts.pods == ("postgres-0",)
    assert facts.services == ("postgres",)
    assert (facts.replicas, facts.ready_replicas) == (1, 1)


async def test_inspect_a_deployment_scaled_to_zero_still_names_its_services(cluster: KubernetesCluster) -> None:
    await cluster.apply(parse_operation("scale deployment/web --replicas=0 -n prod"), dry_run=False)
    facts = await cluster.inspect(parse_operation("scale deployment/web --replicas=2 -n prod"))
    assert (facts.replicas, facts.ready_replicas, facts.pods) == (0, 0, ())
    assert facts.services == ("web",)


async def test_inspect_a_daemonset(cluster: KubernetesCluster) -> None:
    facts = await cluster.inspect(parse_operation("rollout restart daemonset/node-exporter -n monitoring"))
    assert (facts.replicas, facts.ready_replicas, len(facts.pods)) == (3, 3, 3)
    assert facts.services == ()


async def test_inspect_a_pod_names_its_controller(cluster: KubernetesCluster, sandbox: HookedSandbox) -> None:
    web_pod = sorted(_names(_pods(sandbox, "prod", "app=web")))[0]
    facts = await cluster.inspect(parse_operation(f"delete pod {web_pod} -n prod"))
    assert facts.controller == "deployment/web"
    assert facts.pods == (web_pod,)
    assert facts.services == ("web",)
    assert (facts.replicas, facts.ready_replicas) == (2, 2)
    assert not facts.stateful
    postgres = await cluster.inspect(parse_operation("delete pod postgres-0 -n prod"))
    assert postgres.controller == "statefulset/postgres"
    assert postgres.stateful and postgres.volumes == ("data-postgres-0",)
    exporter = sorted(_names(_pods(sandbox, "monitoring", "")))[0]
    daemon = await cluster.inspect(parse_operation(f"delete pod {exporter} -n monitoring"))
    assert daemon.controller == "daemonset/node-exporter"


async def test_inspect_a_bare_pod(cluster: KubernetesCluster, sandbox: HookedSandbox) -> None:
    sandbox.put(
        {
            "kind": "Pod",
            "metadata": {"name": "debug", "namespace": "prod", "labels": {"app": "api"}},
            "spec": {"containers": [{"name": "sh", "image": "busybox:1.36"}]},
        }
    )
    facts = await cluster.inspect(parse_operation("delete pod debug -n prod"))
    assert facts.controller is None
    assert facts.services == ("api",), "the api service selects it by its labels"
    assert facts.note == "pod/debug has no controller: once deleted, nothing recreates it"


async def test_inspect_a_node_lists_the_pods_on_it(cluster: KubernetesCluster, sandbox: HookedSandbox) -> None:
    facts = await cluster.inspect(parse_operation("cordon node-1"))
    on_node = {
        f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        for p in sandbox.objects("pod")
        if p["spec"].get("nodeName") == "node-1"
    }
    assert facts.exists
    assert set(facts.pods) == on_node
    assert any(p.startswith("monitoring/node-exporter-") for p in facts.pods)
    assert any(p.startswith("kube-system/kube-proxy-") for p in facts.pods)
    assert all("/" in s for s in facts.services)
    assert facts.note is None
    await cluster.apply(parse_operation("cordon node-1"), dry_run=False)
    assert (await cluster.inspect(parse_operation("cordon node-1"))).note == "node/node-1 is already cordoned"


async def test_inspect_never_writes(cluster: KubernetesCluster, sandbox: HookedSandbox) -> None:
    sandbox.clear_requests()
    for text in EVERY_OPERATION:
        await cluster.inspect(parse_operation(text))
    assert {r.method for r in sandbox.requests} == {"GET"}


async def test_calls_run_off_the_event_loop(cluster: KubernetesCluster, sandbox: HookedSandbox) -> None:
    # While the sandbox holds an answer back, the caller's loop keeps running other work.
    sandbox.inject("GET", r"^/version/?$", status=None, delay=0.3)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        assert await cluster.check() == "v1.31.0"
    finally:
        task.cancel()
    assert ticks >= 10
    assert threading.current_thread() is threading.main_thread()
