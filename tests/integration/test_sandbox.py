"""The sandbox API server keeps the Kubernetes API semantics the executor relies on.

Everything here goes over HTTP through the official client (which validates every response
against its models), so a response missing a required field fails the test.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from testkit.fakes.sandbox import HookedSandbox

pytest_plugins = ("tests.fixtures_kubernetes",)

Snapshot = Callable[[], dict[str, list[dict[str, Any]]]]

REVISION = "deployment.kubernetes.io/revision"


def status_body(error: ApiException) -> dict[str, Any]:
    """The Status object the server sent with an error."""
    body = json.loads(error.body or "{}")
    assert isinstance(body, dict)
    return body


def _raw(sandbox: HookedSandbox, path: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(sandbox.url + path)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# ---- discovery, auth and the shape of errors


def test_version_has_every_field_the_client_requires(api_client: client.ApiClient) -> None:
    info = client.VersionApi(api_client).get_code()
    assert info.git_version == "v1.31.0"
    assert (info.major, info.minor, info.platform) == ("1", "31", "linux/amd64")


def test_discovery_endpoints_parse(api_client: client.ApiClient) -> None:
    assert client.CoreApi(api_client).get_api_versions().versions == ["v1"]
    groups = client.ApisApi(api_client).get_api_versions().groups
    assert [g.name for g in groups] == ["apps", "autoscaling", "policy", "rbac.authorization.k8s.io",
                                        "authorization.k8s.io", "authentication.k8s.io"]
    [autoscaling] = [g for g in groups if g.name == "autoscaling"]
    assert autoscaling.preferred_version.group_version == "autoscaling/v2"
    hpa_resources = {r.name for r in client.AutoscalingV2Api(api_client).get_api_resources().resources}
    assert hpa_resources == {"horizontalpodautoscalers"}
    policy_resources = {r.name for r in client.PolicyV1Api(api_client).get_api_resources().resources}
    assert policy_resources == {"poddisruptionbudgets"}
    apps_resources = {r.name for r in client.AppsV1Api(api_client).get_api_resources().resources}
    assert {"deployments", "deployments/scale", "statefulsets/scale", "daemonsets", "replicasets"} <= apps_resources
    core_resources = {r.name for r in client.CoreV1Api(api_client).get_api_resources().resources}
    assert {"pods", "nodes", "services", "namespaces", "persistentvolumeclaims", "pods/eviction"} <= core_resources


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_requests_without_the_bearer_token_get_401(sandbox: HookedSandbox, token: str | None) -> None:
    code, body = _raw(sandbox, "/api/v1/nodes", token)
    assert code == 401
    assert body["kind"] == "Status"
    assert body["reason"] == "Unauthorized"
    assert body["code"] == 401
    assert _raw(sandbox, "/api/v1/nodes", sandbox.token)[0] == 200


def test_not_found_is_a_status_object(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        apps.read_namespaced_deployment("nope", "prod")
    assert caught.value.status == 404
    body = status_body(caught.value)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"},
        "code": 404,
    }


def test_unknown_paths_are_404_status(sandbox: HookedSandbox) -> None:
    code, body = _raw(sandbox, "/apis/batch/v1/jobs", sandbox.token)
    assert code == 404
    assert body["reason"] == "NotFound"


# ---- the official client parses every list and get


def test_client_parses_every_list_and_get(apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    listers = {
        "namespaces": core.list_namespace,
        "nodes": core.list_node,
        "pods": core.list_pod_for_all_namespaces,
        "services": core.list_service_for_all_namespaces,
        "pvcs": core.list_persistent_volume_claim_for_all_namespaces,
        "deployments": apps.list_deployment_for_all_namespaces,
        "statefulsets": apps.list_stateful_set_for_all_namespaces,
        "daemonsets": apps.list_daemon_set_for_all_namespaces,
        "replicasets": apps.list_replica_set_for_all_namespaces,
    }
    readers = {
        "namespaces": lambda o: core.read_namespace(o.metadata.name),
        "nodes": lambda o: core.read_node(o.metadata.name),
        "pods": lambda o: core.read_namespaced_pod(o.metadata.name, o.metadata.namespace),
        "services": lambda o: core.read_namespaced_service(o.metadata.name, o.metadata.namespace),
        "pvcs": lambda o: core.read_namespaced_persistent_volume_claim(o.metadata.name, o.metadata.namespace),
        "deployments": lambda o: apps.read_namespaced_deployment(o.metadata.name, o.metadata.namespace),
        "statefulsets": lambda o: apps.read_namespaced_stateful_set(o.metadata.name, o.metadata.namespace),
        "daemonsets": lambda o: apps.read_namespaced_daemon_set(o.metadata.name, o.metadata.namespace),
        "replicasets": lambda o: apps.read_namespaced_replica_set(o.metadata.name, o.metadata.namespace),
    }
    for kind, lister in listers.items():
        listed = lister()
        assert listed.items, kind
        assert listed.metadata.resource_version
        for item in listed.items:
            read = readers[kind](item)
            assert read.metadata.uid == item.metadata.uid
            assert read.metadata.resource_version
    assert len(apps.list_namespaced_deployment("prod").items) == 3
    assert len(core.list_namespaced_pod("monitoring").items) == 3
    assert len(core.list_namespaced_persistent_volume_claim("prod").items) == 1
    scale = apps.read_namespaced_deployment_scale("api", "prod")
    assert (scale.api_version, scale.kind, scale.spec.replicas, scale.status.selector) == (
        "autoscaling/v1",
        "Scale",
        3,
        "app=api",
    )
    assert apps.read_namespaced_stateful_set_scale("postgres", "prod").status.replicas == 1


def test_seeded_cluster(sandbox: HookedSandbox, apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    namespaces = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "prod", "staging", "monitoring", "kube-system"} <= namespaces
    nodes = core.list_node().items
    assert [n.metadata.name for n in nodes] == ["node-1", "node-2", "node-3"]
    for node in nodes:
        assert node.status.allocatable["cpu"]
        assert node.status.node_info.kubelet_version == "v1.31.0"
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    replicas = {
        (d.metadata.namespace, d.metadata.name): d.spec.replicas
        for d in apps.list_deployment_for_all_namespaces().items
    }
    assert replicas == {
        ("prod", "api"): 3,
        ("prod", "web"): 2,
        ("prod", "worker"): 1,
        ("staging", "web"): 2,
        ("staging", "api"): 1,
        ("kube-system", "coredns"): 2,
    }
    api = apps.read_namespaced_deployment("api", "prod")
    assert api.spec.template.spec.containers[0].image == "ghcr.io/acme/api:1.4.2"
    assert api.metadata.annotations[REVISION] == "3"
    history = sorted(
        (int(rs.metadata.annotations[REVISION]), rs.spec.template.spec.containers[0].image, rs.spec.replicas)
        for rs in apps.list_namespaced_replica_set("prod", label_selector="app=api").items
    )
    assert history == [
        (1, "ghcr.io/acme/api:1.4.0", 0),
        (2, "ghcr.io/acme/api:1.4.1", 0),
        (3, "ghcr.io/acme/api:1.4.2", 3),
    ]
    for rs in apps.list_namespaced_replica_set("prod", label_selector="app=api").items:
        owner = rs.metadata.owner_references[0]
        assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Deployment", "api", api.metadata.uid, True)
        assert rs.metadata.labels["pod-template-hash"] in rs.metadata.name
    pods = core.list_namespaced_pod("prod", label_selector="app=api").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.status.phase == "Running"
        assert any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
        assert pod.metadata.owner_references[0].kind == "ReplicaSet"
    assert len({p.spec.node_name for p in pods}) == 3, "pods are spread over the nodes"
    postgres = core.read_namespaced_pod("postgres-0", "prod")
    assert postgres.spec.volumes[0].persistent_volume_claim.claim_name == "data-postgres-0"
    assert postgres.metadata.owner_references[0].kind == "StatefulSet"
    assert core.read_namespaced_persistent_volume_claim("data-postgres-0", "prod").status.phase == "Bound"
    exporters = core.list_namespaced_pod("monitoring").items
    assert sorted(p.spec.node_name for p in exporters) == ["node-1", "node-2", "node-3"]
    assert len(core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-proxy").items) == 3
    assert sorted(s.metadata.name for s in core.list_namespaced_service("prod").items) == ["api", "postgres", "web"]
    assert sandbox.get("deployment", "staging", "web") is not None


# ---- selectors


def test_label_and_field_selectors(core: client.CoreV1Api) -> None:
    assert len(core.list_namespaced_pod("prod", label_selector="app=api,tier=backend").items) == 3
    assert len(core.list_namespaced_pod("prod", label_selector="app==web").items) == 2
    assert len(core.list_namespaced_pod("prod", label_selector="tier in (backend,frontend)").items) == 6
    assert len(core.list_namespaced_pod("prod", label_selector="app!=api").items) == 4
    assert len(core.list_namespaced_pod("prod", label_selector="!tier").items) == 0
    on_node = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-1").items
    assert on_node and all(p.spec.node_name == "node-1" for p in on_node)
    everywhere = core.list_pod_for_all_namespaces().items
    off_node = core.list_pod_for_all_namespaces(field_selector="spec.nodeName!=node-1").items
    assert len(on_node) + len(off_node) == len(everywhere)
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_pod("prod", label_selector="app=(")
    assert caught.value.status == 400
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_pod("prod", field_selector="spec.image=x")
    assert caught.value.status == 400
    assert status_body(caught.value)["reason"] == "BadRequest"


# ---- writes: dry run, resourceVersion, generation, patch types


def _restart_patch(when: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": when}}}}}


def test_dry_run_processes_fully_and_persists_nothing(
    sandbox: HookedSandbox, apps: client.AppsV1Api, snapshot: Snapshot
) -> None:
    before = snapshot()
    version_before = sandbox.resource_version
    answer = apps.patch_namespaced_deployment("api", "prod", _restart_patch(), dry_run="All")
    assert answer.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]
    assert answer.metadata.generation == 4
    scale = apps.patch_namespaced_deployment_scale("web", "prod", {"spec": {"replicas": 5}}, dry_run="All")
    assert scale.spec.replicas == 5
    assert snapshot() == before
    assert sandbox.resource_version == version_before
    # Fully processed: a dry run still gets 404, 409 and 422.
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment("nope", "prod", _restart_patch(), dry_run="All")
    assert caught.value.status == 404
    stale = {"metadata": {"resourceVersion": "1"}, **_restart_patch()}
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment("api", "prod", stale, dry_run="All")
    assert caught.value.status == 409
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment_scale("web", "prod", {"spec": {"replicas": -1}}, dry_run="All")
    assert caught.value.status == 422
    assert snapshot() == before


def test_any_other_dry_run_value_is_400(sandbox: HookedSandbox, apps: client.AppsV1Api, snapshot: Snapshot) -> None:
    before = snapshot()
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment("api", "prod", _restart_patch(), dry_run="Server")
    assert caught.value.status == 400
    assert status_body(caught.value)["reason"] == "BadRequest"
    assert snapshot() == before


def test_stale_resource_version_is_409_conflict(sandbox: HookedSandbox, apps: client.AppsV1Api) -> None:
    read = apps.read_namespaced_deployment("api", "prod")
    apps.patch_namespaced_deployment("api", "prod", {"metadata": {"labels": {"touched": "yes"}}})
    stale = {"metadata": {"resourceVersion": read.metadata.resource_version}, **_restart_patch()}
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment("api", "prod", stale)
    assert caught.value.status == 409
    body = status_body(caught.value)
    assert body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    assert body["details"]["name"] == "api"
    # PUT with the stale object conflicts too; with the fresh one it succeeds.
    read.spec.replicas = 4
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment("api", "prod", read)
    assert caught.value.status == 409
    fresh = apps.read_namespaced_deployment("api", "prod")
    fresh.spec.replicas = 4
    replaced = apps.replace_namespaced_deployment("api", "prod", fresh)
    assert replaced.spec.replicas == 4
    assert len(sandbox.objects("pod", "prod", "app=api")) == 4


def test_writes_bump_resource_version_and_spec_changes_bump_generation(apps: client.AppsV1Api) -> None:
    start = apps.read_namespaced_deployment("web", "prod")
    labelled = apps.patch_namespaced_deployment("web", "prod", {"metadata": {"labels": {"team": "edge"}}})
    assert int(labelled.metadata.resource_version) > int(start.metadata.resource_version)
    assert labelled.metadata.generation == start.metadata.generation, "metadata is not spec"
    restarted = apps.patch_namespaced_deployment("web", "prod", _restart_patch())
    assert int(restarted.metadata.resource_version) > int(labelled.metadata.resource_version)
    assert restarted.metadata.generation == start.metadata.generation + 1
    # The response is the object as written, before the controllers react (as on a real server).
    assert restarted.status.observed_generation == start.metadata.generation
    after = apps.read_namespaced_deployment("web", "prod")
    assert after.status.observed_generation == restarted.metadata.generation
    assert int(after.metadata.resource_version) > int(restarted.metadata.resource_version)
    # A patch that changes nothing writes nothing.
    again = apps.patch_namespaced_deployment("web", "prod", _restart_patch())
    assert again.metadata.resource_version == after.metadata.resource_version


def test_strategic_merge_merges_containers_by_name(apps: client.AppsV1Api) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "ghcr.io/acme/api:9.9.9"}]}}}}
    patched = apps.patch_namespaced_deployment("api", "prod", patch)
    container = patched.spec.template.spec.containers[0]
    assert container.image == "ghcr.io/acme/api:9.9.9"
    assert container.ports[0].container_port == 8080, "the rest of the container is kept"
    assert container.env[0].name == "LOG_LEVEL"


def test_merge_patch_replaces_lists(apps: client.AppsV1Api) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "ghcr.io/acme/api:9.9.9"}]}}}}
    patched = apps.patch_namespaced_deployment("api", "prod", patch, _content_type="application/merge-patch+json")
    container = patched.spec.template.spec.containers[0]
    assert container.image == "ghcr.io/acme/api:9.9.9"
    assert not container.ports, "RFC 7386 replaces the whole list"


def test_json_patch(apps: client.AppsV1Api) -> None:
    image = "/spec/template/spec/containers/0/image"
    patched = apps.patch_namespaced_deployment(
        "web",
        "prod",
        [
            {"op": "test", "path": image, "value": "ghcr.io/acme/web:2.3.1"},
            {"op": "replace", "path": image, "value": "ghcr.io/acme/web:2.4.0"},
        ],
    )
    assert patched.spec.template.spec.containers[0].image == "ghcr.io/acme/web:2.4.0"
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment("web", "prod", [{"op": "test", "path": image, "value": "old"}])
    assert caught.value.status == 422


def test_server_side_apply_is_refused_clearly(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment(
            "web", "prod", {"spec": {"replicas": 1}}, _content_type="application/apply-patch+yaml"
        )
    assert caught.value.status == 415


def test_invalid_objects_are_422_with_causes(
    sandbox: HookedSandbox, apps: client.AppsV1Api, snapshot: Snapshot
) -> None:
    before = snapshot()
    patch = {"spec": {"template": {"metadata": {"labels": {"app": "other"}}}}}
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment("api", "prod", patch)
    assert caught.value.status == 422
    body = status_body(caught.value)
    assert body["reason"] == "Invalid"
    assert body["details"]["kind"] == "Deployment"
    assert body["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    assert "`selector` does not match template `labels`" in body["message"]
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment("api", "prod", {"spec": {"selector": {"matchLabels": {"app": "x"}}}})
    assert caught.value.status == 422
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment("api", "prod", {"spec": {"replicas": "three"}})
    assert caught.value.status == 400, "a wrongly typed field fails decoding, before validation"
    assert snapshot() == before


def test_put_with_a_different_name_is_400(apps: client.AppsV1Api) -> None:
    web = apps.read_namespaced_deployment("web", "prod")
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment("api", "prod", web)
    assert caught.value.status == 400


# ---- the scale subresource


def test_scale_subresource(sandbox: HookedSandbox, apps: client.AppsV1Api) -> None:
    scale = apps.patch_namespaced_deployment_scale("web", "prod", {"spec": {"replicas": 4}})
    assert (scale.kind, scale.api_version, scale.spec.replicas) == ("Scale", "autoscaling/v1", 4)
    assert scale.status.replicas == 2, "the answer precedes the controllers"
    assert apps.read_namespaced_deployment("web", "prod").spec.replicas == 4
    assert len(sandbox.objects("pod", "prod", "app=web")) == 4
    replaced = apps.read_namespaced_stateful_set_scale("postgres", "prod")
    replaced.spec.replicas = 2
    apps.replace_namespaced_stateful_set_scale("postgres", "prod", replaced)
    assert sandbox.get("pod", "prod", "postgres-1") is not None
    assert sandbox.get("persistentvolumeclaim", "prod", "data-postgres-1") is not None
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment_scale("web", "prod", {"spec": {"replicas": -1}})
    body = status_body(caught.value)
    assert (caught.value.status, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: -1: must be greater than or equal to 0",
            "field": "spec.replicas",
        }
    ]
    with pytest.raises(ApiException) as caught:
        apps.read_namespaced_deployment_scale("nope", "prod")
    assert caught.value.status == 404


# ---- pods


def test_deleting_a_pod_returns_it_terminating_and_it_is_replaced(
    sandbox: HookedSandbox, core: client.CoreV1Api
) -> None:
    victim = sandbox.objects("pod", "prod", "app=web")[0]["metadata"]["name"]
    deleted = core.delete_namespaced_pod(victim, "prod")
    assert deleted.metadata.name == victim
    assert deleted.metadata.deletion_timestamp is not None
    assert deleted.metadata.deletion_grace_period_seconds == 30
    names = [p["metadata"]["name"] for p in sandbox.objects("pod", "prod", "app=web")]
    assert victim not in names
    assert len(names) == 2, "the ReplicaSet replaced it"
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod(victim, "prod")
    assert caught.value.status == 404


def test_pod_delete_honours_dry_run_and_preconditions(
    sandbox: HookedSandbox, core: client.CoreV1Api, snapshot: Snapshot
) -> None:
    before = snapshot()
    answer = core.delete_namespaced_pod("postgres-0", "prod", dry_run="All")
    assert answer.metadata.deletion_timestamp is not None
    stale = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-the-uid"))
    with pytest.raises(ApiException) as caught:
        core.delete_namespaced_pod("postgres-0", "prod", body=stale)
    assert caught.value.status == 409
    assert snapshot() == before
    old_uid = sandbox.get("pod", "prod", "postgres-0")["metadata"]["uid"]  # type: ignore[index]
    core.delete_namespaced_pod("postgres-0", "prod")
    recreated = sandbox.get("pod", "prod", "postgres-0")
    assert recreated is not None and recreated["metadata"]["uid"] != old_uid, "a StatefulSet keeps pod names"


def test_a_bare_pod_is_not_replaced(sandbox: HookedSandbox, core: client.CoreV1Api) -> None:
    sandbox.put(
        {
            "kind": "Pod",
            "metadata": {"name": "debug", "namespace": "default", "labels": {"run": "debug"}},
            "spec": {"containers": [{"name": "sh", "image": "busybox:1.36"}]},
        }
    )
    pod = core.read_namespaced_pod("debug", "default")
    assert pod.status.phase == "Running" and pod.spec.node_name
    core.delete_namespaced_pod("debug", "default")
    assert sandbox.objects("pod", "default") == []


# ---- controllers


def test_a_template_change_rolls_out_a_new_replica_set(sandbox: HookedSandbox, apps: client.AppsV1Api) -> None:
    old_pods = {p["metadata"]["name"] for p in sandbox.objects("pod", "prod", "app=api")}
    apps.patch_namespaced_deployment("api", "prod", _restart_patch())
    deployment = apps.read_namespaced_deployment("api", "prod")
    assert deployment.metadata.annotations[REVISION] == "4"
    replica_sets = apps.list_namespaced_replica_set("prod", label_selector="app=api").items
    newest = max(replica_sets, key=lambda rs: int(rs.metadata.annotations[REVISION]))
    assert newest.metadata.annotations[REVISION] == "4"
    assert newest.spec.replicas == 3
    assert newest.metadata.owner_references[0].uid == deployment.metadata.uid
    assert newest.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]
    assert all(rs.spec.replicas == 0 for rs in replica_sets if rs is not newest)
    new_pods = sandbox.objects("pod", "prod", "app=api")
    assert len(new_pods) == 3
    assert not old_pods & {p["metadata"]["name"] for p in new_pods}, "every pod was replaced"
    assert all(p["metadata"]["labels"]["pod-template-hash"] in newest.metadata.name for p in new_pods)
    assert deployment.status.updated_replicas == 3 and deployment.status.ready_replicas == 3


def test_restoring_an_old_template_reuses_its_replica_set(sandbox: HookedSandbox, apps: client.AppsV1Api) -> None:
    rs_names = {rs["metadata"]["name"] for rs in sandbox.objects("replicaset", "prod", "app=api")}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "ghcr.io/acme/api:1.4.1"}]}}}}
    apps.patch_namespaced_deployment("api", "prod", patch)
    replica_sets = sandbox.objects("replicaset", "prod", "app=api")
    assert {rs["metadata"]["name"] for rs in replica_sets} == rs_names, "no new ReplicaSet"
    revived = next(rs for rs in replica_sets if rs["spec"]["replicas"] == 3)
    assert revived["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/api:1.4.1"
    assert revived["metadata"]["annotations"][REVISION] == "4"
    assert revived["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "2"


def test_cordon_taints_the_node_and_new_pods_avoid_it(
    sandbox: HookedSandbox, apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    node = core.patch_node("node-1", {"spec": {"unschedulable": True}})
    assert node.spec.unschedulable is True
    assert [t.key for t in core.read_node("node-1").spec.taints] == ["node.kubernetes.io/unschedulable"]
    before = {p["metadata"]["name"] for p in sandbox.objects("pod", "prod", "app=web")}
    apps.patch_namespaced_deployment_scale("web", "prod", {"spec": {"replicas": 6}})
    new_pods = [p for p in sandbox.objects("pod", "prod", "app=web") if p["metadata"]["name"] not in before]
    assert len(new_pods) == 4
    assert all(p["spec"]["nodeName"] != "node-1" for p in new_pods)
    core.patch_node("node-1", {"spec": {"unschedulable": False}})
    assert not core.read_node("node-1").spec.taints


# ---- test hooks, faults, threads


def test_hooks_return_copies_and_put_runs_the_controllers(sandbox: HookedSandbox) -> None:
    copy = sandbox.get("Deployment", "prod", "api")
    assert copy is not None
    copy["spec"]["replicas"] = 99
    assert sandbox.get("deployments", "prod", "api")["spec"]["replicas"] == 3  # type: ignore[index]
    sandbox.put(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "batch", "namespace": "staging"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "batch"}},
                "template": {
                    "metadata": {"labels": {"app": "batch"}},
                    "spec": {"containers": [{"name": "batch", "image": "ghcr.io/acme/batch:1.0.0"}]},
                },
            },
        }
    )
    assert len(sandbox.objects("pod", "staging", "app=batch")) == 2
    assert sandbox.delete_object("deploy", "staging", "batch") is True
    assert sandbox.objects("pod", "staging", "app=batch") == [], "dependents are garbage-collected"
    assert sandbox.objects("replicaset", "staging", "app=batch") == []
    assert sandbox.delete_object("deploy", "staging", "batch") is False


def test_injected_faults_and_the_request_log(sandbox: HookedSandbox, core: client.CoreV1Api) -> None:
    sandbox.clear_requests()
    sandbox.inject("GET", r"/nodes$", status=503, reason="ServiceUnavailable", times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as caught:
            core.list_node()
        assert caught.value.status == 503
        assert status_body(caught.value)["reason"] == "ServiceUnavailable"
    assert len(core.list_node().items) == 3
    assert sandbox.requests == [("GET", "/api/v1/nodes", {})] * 3
    core.list_namespaced_pod("prod", label_selector="app=api")
    assert sandbox.requests[-1] == ("GET", "/api/v1/namespaces/prod/pods", {"labelSelector": "app=api"})


def test_a_delayed_answer_times_the_client_out(sandbox: HookedSandbox, core: client.CoreV1Api) -> None:
    sandbox.inject("GET", r"/nodes/node-1$", status=None, delay=5.0)
    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        core.read_node("node-1", _request_timeout=0.3)
    assert "timed out" in repr(caught.value).lower() or "timeout" in repr(caught.value).lower()
    assert time.monotonic() - started < 3


def test_random_faults_are_deterministic(sandbox: HookedSandbox, core: client.CoreV1Api) -> None:
    def outcomes() -> list[int]:
        sandbox.inject_random(0.5, seed=7, statuses=(500, 503))
        codes = []
        for _ in range(20):
            try:
                core.list_namespace()
                codes.append(200)
            except ApiException as error:
                codes.append(int(error.status))
        sandbox.clear_faults()
        return codes

    first = outcomes()
    assert first == outcomes()
    assert {200, 500, 503} <= set(first)


def test_on_request_hook_runs_before_the_request(sandbox: HookedSandbox, apps: client.AppsV1Api) -> None:
    seen: list[int] = []
    sandbox.on_request("PATCH", r"/deployments/web$", lambda sb: seen.append(sb.resource_version), times=1)
    apps.patch_namespaced_deployment("web", "prod", _restart_patch())
    apps.patch_namespaced_deployment("web", "prod", _restart_patch("2026-01-02T00:00:00Z"))
    assert len(seen) == 1


async def test_serves_while_the_callers_loop_blocks(core: client.CoreV1Api) -> None:
    # A synchronous call on the event loop blocks it; the sandbox has its own loop and thread.
    assert len(core.list_node().items) == 3


def test_stop_ends_the_thread_and_start_stop_are_idempotent() -> None:
    sandbox = HookedSandbox(seed=False)
    with sandbox:
        assert sandbox.start() == sandbox.url
        assert sandbox.objects("node") == []
    sandbox.stop()
    assert not sandbox.running
    assert not [t for t in threading.enumerate() if t.name == "signoff-sandbox"]
    with pytest.raises(RuntimeError):
        _ = sandbox.url
