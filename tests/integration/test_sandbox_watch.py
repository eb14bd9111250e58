"""The sandbox's watches, as verification uses them through the official client: exactly what changed
after a list's resourceVersion (ADDED, MODIFIED, DELETED), label and field selectors, bookmarks,
410 Gone for a resourceVersion older than its change log, and watches a test breaks; and faults
whose pods restart over time with a last termination message."""

from __future__ import annotations

import time

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from testkit.fakes.sandbox import HookedSandbox

pytest_plugins = ("tests.fixtures_kubernetes",)


def test_a_pod_watch_from_a_list_sees_new_pods_added_and_removed_ones_deleted(
        apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    listed = core.list_namespaced_pod("prod", label_selector="app=worker")
    before = {p.metadata.name for p in listed.items}
    apps.patch_namespaced_deployment_scale("worker", "prod", {"spec": {"replicas": len(before) + 1}})
    apps.patch_namespaced_deployment_scale("worker", "prod", {"spec": {"replicas": len(before)}})
    seen = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_pod, "prod", label_selector="app=worker",
        resource_version=listed.metadata.resource_version, timeout_seconds=1)]
    added = [name for kind, name in seen if kind == "ADDED"]
    assert len(added) == 1 and added[0] not in before, seen
    assert any(kind == "DELETED" for kind, _ in seen), seen
    assert all(name.startswith("worker-") for _, name in seen)


def test_bookmarks_come_every_second_when_asked(apps: client.AppsV1Api, api_client: client.ApiClient) -> None:
    listed = apps.list_namespaced_deployment("prod", field_selector="metadata.name=web")
    response = apps.list_namespaced_deployment(
        "prod", field_selector="metadata.name=web", watch=True, allow_watch_bookmarks=True,
        resource_version=listed.metadata.resource_version, timeout_seconds=2, _preload_content=False)
    started = time.monotonic()
    kinds = list(watch.watch.iter_resp_lines(response))
    assert any('"BOOKMARK"' in k for k in kinds), kinds
    assert time.monotonic() - started < 4


def test_a_resource_version_older_than_the_change_log_is_410_gone(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as raised:
        list(watch.Watch().stream(apps.list_namespaced_deployment, "prod", field_selector="metadata.name=web",
                                  resource_version="1", timeout_seconds=1))
    assert raised.value.status == 410


def test_a_broken_watch_ends_with_410(apps: client.AppsV1Api, sandbox: HookedSandbox) -> None:
    sandbox.break_watches(1)
    served = sandbox.watches_served
    with pytest.raises(ApiException) as raised:
        list(watch.Watch().stream(apps.list_namespaced_deployment, "prod", timeout_seconds=1))
    assert raised.value.status == 410 and sandbox.watches_served == served + 1
    # the next one works again
    assert list(watch.Watch().stream(apps.list_namespaced_deployment, "prod", timeout_seconds=1))


def test_a_crash_looping_pod_restarts_over_time_and_says_how_it_died(
        apps: client.AppsV1Api, core: client.CoreV1Api, sandbox: HookedSandbox) -> None:
    sandbox.set_restart_interval(1.0)
    web = sandbox.get("deployment", "prod", "web")
    web["metadata"].setdefault("annotations", {}).update({"sandbox.signoff.dev/fail": "CrashLoopBackOff",
                                                          "sandbox.signoff.dev/fail-message": "boom"})
    sandbox.put(web)
    apps.patch_namespaced_deployment("web", "prod", {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}})

    def crashing() -> list[client.V1ContainerStatus]:
        pods = core.list_namespaced_pod("prod", label_selector="app=web").items
        return [c for p in pods for c in p.status.container_statuses or []
                if c.state.waiting is not None and c.state.waiting.reason == "CrashLoopBackOff"]

    first = crashing()
    assert first and {c.restart_count for c in first} == {1}
    assert first[0].last_state.terminated.exit_code == 1 and first[0].last_state.terminated.message == "boom"
    sandbox.advance(3.5)  # back-off 1 s, then 2 s: two more restarts
    assert {c.restart_count for c in crashing()} == {3}


def test_an_image_fault_pulls_then_backs_off(apps: client.AppsV1Api, core: client.CoreV1Api,
                                             sandbox: HookedSandbox) -> None:
    sandbox.set_restart_interval(1.0)
    web = sandbox.get("deployment", "prod", "web")
    web["metadata"].setdefault("annotations", {})["sandbox.signoff.dev/fail"] = "ImagePullBackOff"
    sandbox.put(web)
    apps.patch_namespaced_deployment("web", "prod", {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}})

    def reasons() -> set[str]:
        pods = core.list_namespaced_pod("prod", label_selector="app=web").items
        return {c.state.waiting.reason for p in pods for c in p.status.container_statuses or []
                if c.state.waiting is not None}

    assert reasons() == {"ErrImagePull"}
    sandbox.advance(1.5)
    assert reasons() == {"ImagePullBackOff"}
