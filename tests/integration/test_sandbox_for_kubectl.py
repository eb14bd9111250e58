"""What kubectl needs of the sandbox beyond the executor's calls: `?watch=true` (`kubectl rollout
status`, the official client's watch) and the server-side Table that `kubectl get` prints."""

from __future__ import annotations

import json

from kubernetes import client, watch

from testkit.fakes.sandbox import HookedSandbox

pytest_plugins = ("tests.fixtures_kubernetes",)


def test_a_watch_streams_the_changes_after_its_resource_version(apps: client.AppsV1Api,
                                                                sandbox: HookedSandbox) -> None:
    listed = apps.list_namespaced_deployment("prod", field_selector="metadata.name=web")
    since = listed.metadata.resource_version
    apps.patch_namespaced_deployment_scale("web", "prod", {"spec": {"replicas": 4}})
    events = watch.Watch().stream(apps.list_namespaced_deployment, "prod", field_selector="metadata.name=web",
                                  resource_version=since, timeout_seconds=1)
    seen = [(e["type"], e["object"].metadata.name, e["object"].spec.replicas) for e in events]
    assert seen and seen[0] == ("MODIFIED", "web", 4)
    assert {name for _, name, _ in seen} == {"web"}


def test_a_watch_sees_changes_made_while_it_is_open_and_deletions(apps: client.AppsV1Api, core: client.CoreV1Api,
                                                                  sandbox: HookedSandbox) -> None:
    watcher = watch.Watch()
    seen: list[tuple[str, int]] = []
    for event in watcher.stream(apps.list_namespaced_deployment, "prod", field_selector="metadata.name=web",
                                timeout_seconds=30):
        seen.append((event["type"], event["object"].spec.replicas))
        if len(seen) == 1:  # the initial ADDED; now change it while the watch is open
            apps.patch_namespaced_deployment_scale("web", "prod", {"spec": {"replicas": 5}})
        elif event["object"].spec.replicas == 5:
            watcher.stop()
    assert seen[0] == ("ADDED", 2) and seen[-1] == ("MODIFIED", 5)
    pod = sandbox.objects("pod", "prod", "app=worker")[0]["metadata"]["name"]
    deleted = []
    for event in watcher.stream(core.list_namespaced_pod, "prod", field_selector=f"metadata.name={pod}",
                                timeout_seconds=30):
        if event["type"] == "ADDED":
            core.delete_namespaced_pod(pod, "prod")
        elif event["type"] == "DELETED":
            deleted.append(event["object"].metadata.name)
            watcher.stop()
    assert deleted == [pod]


def test_kubectl_gets_a_table_when_it_asks_for_one(api_client: client.ApiClient) -> None:
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    response = api_client.call_api("GET", f"{api_client.configuration.host}/api/v1/namespaces/prod/pods",
                                   header_params={"Accept": accept, "Authorization": "Bearer sandbox-token"})
    response.read()
    table = json.loads(response.data)
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert {r["object"]["metadata"]["namespace"] for r in table["rows"]} == {"prod"}
