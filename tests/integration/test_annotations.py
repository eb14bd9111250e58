"""Every object signoff changes carries `signoff.dev/request` and `signoff.dev/approved-by`: the production
executor against the sandbox API server, each object read back with the official client."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from adapters.kubernetes.executor import KubernetesCluster
from core.domain.approvals import RequestStatus
from core.domain.operations import parse_operation
from core.domain.stamp import APPROVED_BY_ANNOTATION, REQUEST_ANNOTATION
from testkit.support import make_settings, running_app

pytest_plugins = ("tests.fixtures_kubernetes",)

STAMP = {REQUEST_ANNOTATION: "req-42", APPROVED_BY_ANNOTATION: "alice,bob"}


def _annotations(obj: Any) -> dict[str, str]:
    return dict(obj.metadata.annotations or {})


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("rollout restart deployment/api -n prod", lambda apps, core: apps.read_namespaced_deployment("api", "prod")),
        ("rollout restart statefulset/postgres -n prod",
         lambda apps, core: apps.read_namespaced_stateful_set("postgres", "prod")),
        ("restart daemonset node-exporter in monitoring",
         lambda apps, core: apps.read_namespaced_daemon_set("node-exporter", "monitoring")),
        ("scale deployment/web --replicas=5 -n prod",
         lambda apps, core: apps.read_namespaced_deployment("web", "prod")),
        ("scale statefulset/postgres --replicas=2 -n prod",
         lambda apps, core: apps.read_namespaced_stateful_set("postgres", "prod")),
        ("rollout undo deployment/api -n prod", lambda apps, core: apps.read_namespaced_deployment("api", "prod")),
        ("cordon node-2", lambda apps, core: core.read_node("node-2")),
        ("drain node-3", lambda apps, core: core.read_node("node-3")),
    ],
)
async def test_each_changed_object_carries_the_request_and_its_signers(
    cluster: KubernetesCluster, apps: client.AppsV1Api, core: client.CoreV1Api, text: str, read: Any,
) -> None:
    before = _annotations(read(apps, core))
    assert REQUEST_ANNOTATION not in before
    await cluster.apply(parse_operation(text), dry_run=False, stamp=STAMP)
    after = _annotations(read(apps, core))
    assert after[REQUEST_ANNOTATION] == "req-42"
    assert after[APPROVED_BY_ANNOTATION] == "alice,bob"


async def test_a_dry_run_stamps_nothing(cluster: KubernetesCluster, apps: client.AppsV1Api) -> None:
    await cluster.apply(parse_operation("rollout restart deployment/api -n prod"), dry_run=True, stamp=STAMP)
    assert REQUEST_ANNOTATION not in _annotations(apps.read_namespaced_deployment("api", "prod"))


async def test_a_second_request_replaces_the_stamp(cluster: KubernetesCluster, apps: client.AppsV1Api) -> None:
    await cluster.apply(parse_operation("rollout restart deployment/api -n prod"), dry_run=False, stamp=STAMP)
    await cluster.apply(parse_operation("scale deployment/api --replicas=4 -n prod"), dry_run=False,
                        stamp={REQUEST_ANNOTATION: "req-43", APPROVED_BY_ANNOTATION: "carol"})
    annotations = _annotations(apps.read_namespaced_deployment("api", "prod"))
    assert annotations[REQUEST_ANNOTATION] == "req-43"
    assert annotations[APPROVED_BY_ANNOTATION] == "carol"


APP_POLICY = """\
[people.alice]
groups = ["sre"]

[people.bob]
groups = ["sre"]

[people.carol]
groups = ["sre"]

[risk.medium]
quorum = 2
approvers = ["sre"]
"""


async def test_an_approved_request_stamps_its_id_and_signers(sqlite_database_url: str) -> None:
    """Through the whole app: the request id and the names of the people who signed, comma-separated."""
    async with running_app(make_settings(sqlite_database_url), policy=APP_POLICY) as app:
        assert app.sandbox is not None
        people = app.policy.people
        request = await app.service.request("rollout restart deployment/api -n prod", by=people["alice"],
                                            via="console")
        await app.service.sign(request.id, by=people["carol"], via="console")
        await app.service.sign(request.id, by=people["bob"], via="console")
        await app.settle()
        assert (await app.service.get(request.id)).status is RequestStatus.succeeded
        deployment = app.sandbox.get("deployment", "prod", "api")
        assert deployment["metadata"]["annotations"][REQUEST_ANNOTATION] == request.id
        assert deployment["metadata"]["annotations"][APPROVED_BY_ANNOTATION] == "carol,bob"
