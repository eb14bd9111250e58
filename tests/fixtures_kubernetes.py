"""Fixtures for tests that run the official Kubernetes client against the sandbox API server.

Use them from a test module with `pytest_plugins = ("tests.fixtures_kubernetes",)`.
Every sandbox is fresh (the seeded cluster is copied, not rebuilt) and stopped afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from adapters.kubernetes.executor import KubernetesCluster
from adapters.kubernetes.sandbox.server import THREAD_NAME
from testkit.fakes.sandbox import HookedSandbox

ALL_KINDS = (
    "Namespace",
    "Node",
    "Pod",
    "Service",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
)


@pytest.fixture
def sandbox() -> Iterator[HookedSandbox]:
    cluster = HookedSandbox()  # the product's sandbox plus the hooks tests use
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
    assert not cluster.running
    assert not [t for t in threading.enumerate() if t.name == THREAD_NAME], "a sandbox thread leaked"


@pytest.fixture
def api_client(sandbox: HookedSandbox) -> Iterator[client.ApiClient]:
    configuration = client.Configuration(host=sandbox.url, api_key={"authorization": f"Bearer {sandbox.token}"})
    configuration.retries = False  # every request reaches the sandbox exactly once
    api = client.ApiClient(configuration)
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def cluster(sandbox: HookedSandbox) -> Iterator[KubernetesCluster]:
    executor = KubernetesCluster.for_url(sandbox.url, sandbox.token, request_timeout=2.0)
    try:
        yield executor
    finally:
        executor.close()


@pytest.fixture
def snapshot(sandbox: HookedSandbox) -> Callable[[], dict[str, list[dict[str, Any]]]]:
    """`snapshot()`: every stored object of every kind, to show that something changed nothing."""

    def take() -> dict[str, list[dict[str, Any]]]:
        return {kind: sandbox.objects(kind) for kind in ALL_KINDS}

    return take
