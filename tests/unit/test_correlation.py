"""The correlation key, as a table: which alerts are the same problem (docs/incidents.md)."""

from __future__ import annotations

import pytest

from core.domain.correlation import correlation_key, replicaset_of, workload_of


@pytest.mark.parametrize(("labels", "owner", "workload"), [
    ({"pod": "api-7c9f8d-x1"}, None, "deployment/api"),
    ({"pod": "api-7d9f8b6c5-x2x4z"}, None, "deployment/api"),
    ({"pod": "db-0"}, None, "statefulset/db"),
    ({"pod": "api-7c9f8d-x1", "deployment": "web"}, None, "deployment/web"),  # labels before the pod's name
    ({"pod": "api-7c9f8d-x1"}, "deployment/front", "deployment/front"),      # the cluster before the labels
    ({"statefulset": "Kafka"}, None, "statefulset/kafka"),
    ({"node": "node-1"}, None, None),
    ({"pod": "standalone"}, None, None),
])
def test_workload_sources_in_order(labels: dict[str, str], owner: str | None, workload: str | None) -> None:
    assert workload_of(labels, owner) == workload


def key(name: str, **labels: str) -> str:
    return correlation_key(name, labels, workload_of(labels))


@pytest.mark.parametrize(("left", "right", "same"), [
    (key("KubePodCrashLooping", namespace="prod", pod="api-7c9f8d-x1"),
     key("KubePodCrashLooping", namespace="prod", pod="api-7c9f8d-z9"), True),            # same workload
    (key("KubePodCrashLooping", namespace="prod", pod="api-7c9f8d-x1"),
     key("KubePodCrashLooping", namespace="prod", deployment="api"), True),               # label or pod name
    (key("KubePodCrashLooping", namespace="prod", pod="api-7c9f8d-x1"),
     key("KubePodCrashLooping", namespace="prod", pod="web-7c9f8d-x1"), False),           # another workload
    (key("KubePodCrashLooping", namespace="prod", pod="api-7c9f8d-x1"),
     key("KubePodCrashLooping", namespace="staging", pod="api-7c9f8d-x1"), False),        # another namespace
    (key("KubePodCrashLooping", namespace="prod", pod="api-7c9f8d-x1"),
     key("KubePodNotReady", namespace="prod", pod="api-7c9f8d-x1"), False),               # another alert
    (key("KubePodCrashLooping", namespace="prod", pod="api-7c9f8d-x1", cluster="eu"),
     key("KubePodCrashLooping", namespace="prod", pod="api-7c9f8d-x1", cluster="us"), False),
    (key("KubeNodeNotReady", node="node-1"), key("KubeNodeNotReady", node="node-2"), False),
    (key("KubeNodeNotReady", node="node-1"), key("KubeNodeNotReady", node="node-1"), True),
])
def test_correlation_table(left: str, right: str, same: bool) -> None:
    assert (left == right) is same


def test_the_replicaset_of_a_pod_name() -> None:
    assert replicaset_of("api-7c9f8d-x1") == "api-7c9f8d"
    assert replicaset_of("api-7d9f8b6c5-x2x4z") == "api-7d9f8b6c5"
    assert replicaset_of("db-0") is None and replicaset_of("standalone") is None
