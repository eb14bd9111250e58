"""A restart of a StatefulSet or DaemonSet with `updateStrategy: OnDelete` replaces no pod, so it could
never be verified: it is refused when it is requested, naming the strategy and what works instead
(issue 18, item 13). The sandbox keeps OnDelete as a real API server does; the refusal reaches the
requester over the HTTP API and chat, and nothing is stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapters.kubernetes.executor import KubernetesCluster
from bot.bootstrap import App
from bot.http import build_http_app
from core.chat.commands import ChatContext
from core.domain.approvals import Place, RequestStatus
from core.domain.operations import parse_operation
from core.domain.policy import Person
from testkit.fakes.sandbox import HookedSandbox
from testkit.support import make_settings, running_app

pytest_plugins = ("tests.fixtures_kubernetes",)

TOKEN = "api-token-for-tests-0123"
CONSOLE = Place(platform="console", channel="console")


def on_delete(sandbox: HookedSandbox, kind: str, namespace: str, name: str) -> None:
    workload = sandbox.get(kind, namespace, name)
    assert workload is not None
    workload["spec"]["updateStrategy"] = {"type": "OnDelete"}
    sandbox.put(workload)


def _revisions(sandbox: HookedSandbox, selector: str) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["labels"]["controller-revision-hash"]
            for p in sandbox.objects("pod", "prod", selector)}


# ---- the sandbox keeps OnDelete


def test_an_on_delete_statefulset_replaces_a_pod_only_when_it_is_deleted(sandbox: HookedSandbox) -> None:
    sandbox.put({**(postgres := sandbox.get("StatefulSet", "prod", "postgres") or {}),
                 "spec": {**postgres["spec"], "replicas": 2}})
    on_delete(sandbox, "StatefulSet", "prod", "postgres")
    before = _revisions(sandbox, "app=postgres")
    assert set(before) == {"postgres-0", "postgres-1"}
    changed = sandbox.get("StatefulSet", "prod", "postgres")
    assert changed is not None
    changed["spec"]["template"]["metadata"].setdefault("annotations", {})["touched"] = "1"
    sandbox.put(changed)
    assert _revisions(sandbox, "app=postgres") == before  # the new template runs nowhere yet
    status = (sandbox.get("StatefulSet", "prod", "postgres") or {})["status"]
    assert status["updateRevision"] != status["currentRevision"]
    assert status.get("updatedReplicas", 0) == 0

    sandbox.delete_object("Pod", "prod", "postgres-0")
    after = _revisions(sandbox, "app=postgres")
    assert after["postgres-0"] == status["updateRevision"]  # recreated from the new template
    assert after["postgres-1"] == before["postgres-1"]
    assert (sandbox.get("StatefulSet", "prod", "postgres") or {})["status"]["updatedReplicas"] == 1


def test_an_on_delete_daemonset_keeps_its_pods_when_its_template_changes(sandbox: HookedSandbox) -> None:
    on_delete(sandbox, "DaemonSet", "monitoring", "node-exporter")
    pods = {p["metadata"]["name"] for p in sandbox.objects("pod", "monitoring")}
    changed = sandbox.get("DaemonSet", "monitoring", "node-exporter")
    assert changed is not None
    changed["spec"]["template"]["metadata"].setdefault("annotations", {})["touched"] = "1"
    sandbox.put(changed)
    assert {p["metadata"]["name"] for p in sandbox.objects("pod", "monitoring")} == pods
    status = (sandbox.get("DaemonSet", "monitoring", "node-exporter") or {})["status"]
    assert status.get("updatedNumberScheduled", 0) == 0


# ---- the executor reads the strategy


async def test_the_facts_name_the_update_strategy(sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    restart = parse_operation("rollout restart statefulset/postgres -n prod")
    assert (await cluster.inspect(restart)).update_strategy == "RollingUpdate"
    on_delete(sandbox, "StatefulSet", "prod", "postgres")
    assert (await cluster.inspect(restart, fresh=True)).update_strategy == "OnDelete"
    on_delete(sandbox, "DaemonSet", "monitoring", "node-exporter")
    agent = parse_operation("rollout restart daemonset/node-exporter -n monitoring")
    assert (await cluster.inspect(agent)).update_strategy == "OnDelete"
    deployment = parse_operation("rollout restart deployment/api -n prod")
    assert (await cluster.inspect(deployment)).update_strategy == "RollingUpdate"


# ---- refused at request time, over the HTTP API and chat


@pytest.fixture
async def api(sqlite_database_url: str) -> AsyncIterator[tuple[App, str]]:
    async with running_app(make_settings(sqlite_database_url, SIGNOFF_API_TOKEN=TOKEN)) as app:
        assert app.sandbox is not None
        server = TestServer(build_http_app(app))
        await server.start_server()
        try:
            yield app, str(server.make_url("/api/v1"))
        finally:
            await server.close()


async def _call(method: str, url: str, body: object = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(
        method, url, data=json.dumps(body) if body is not None else None,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.json()


async def test_the_api_refuses_a_restart_of_an_on_delete_statefulset(api: tuple[App, str]) -> None:
    app, base = api
    assert app.sandbox is not None
    on_delete(app.sandbox, "StatefulSet", "prod", "postgres")
    status, body = await _call("POST", base + "/requests",
                               {"action": "rollout restart statefulset/postgres -n prod", "requested_by": "alice"})
    assert status == 422, body
    assert body["error"] == "unverifiable"
    message = body["message"]
    assert "OnDelete" in message and "statefulset/postgres" in message
    assert "delete pod postgres-0 -n prod" in message and "one pod at a time" in message
    assert (await _call("GET", base + "/requests/R-1"))[0] == 404  # nothing stored
    assert not [r for r in app.sandbox.requests if r.method != "GET"]  # nothing sent to the cluster

    # A restart with a rolling strategy is an ordinary request.
    status, body = await _call("POST", base + "/requests",
                               {"action": "rollout restart daemonset/node-exporter -n monitoring",
                                "requested_by": "alice"})
    assert status == 201, body


async def test_chat_refuses_a_restart_of_an_on_delete_daemonset(sqlite_database_url: str) -> None:
    async with running_app(make_settings(sqlite_database_url)) as app:
        assert app.sandbox is not None
        on_delete(app.sandbox, "DaemonSet", "monitoring", "node-exporter")
        pod = sorted(p["metadata"]["name"] for p in app.sandbox.objects("pod", "monitoring"))[0]
        reply = await app.chat.handle("request rollout restart daemonset/node-exporter -n monitoring",
                                      ChatContext(platform="console", account="alice", place=CONSOLE))
        assert "OnDelete" in reply.text and "daemonset/node-exporter" in reply.text
        assert f"delete pod {pod} -n monitoring" in reply.text
        counts = await app.db.read(lambda uow: uow.requests.counts())
        assert not any(counts.values())


# ---- and if it happens anyway (the strategy changed after the request was made)


async def test_a_restart_of_an_on_delete_workload_fails_its_verification_at_once(
        sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    """As `kubectl rollout status` answers at once for OnDelete, rather than waiting for the deadline."""
    on_delete(sandbox, "StatefulSet", "prod", "postgres")
    restart = parse_operation("rollout restart statefulset/postgres -n prod")
    result = await cluster.apply(restart, dry_run=False)
    progress = await cluster.observe(restart, result)
    assert progress.failed and not progress.done
    assert progress.reason is not None and "OnDelete" in progress.reason
    assert "delete pod postgres-0 -n prod" in progress.reason

    # Scaling an OnDelete StatefulSet does add pods, and is followed as usual.
    scale = parse_operation("scale statefulset/postgres --replicas=2 -n prod")
    scaled = await cluster.observe(scale, await cluster.apply(scale, dry_run=False))
    assert not scaled.failed

    on_delete(sandbox, "DaemonSet", "monitoring", "node-exporter")
    agent = parse_operation("rollout restart daemonset/node-exporter -n monitoring")
    progress = await cluster.observe(agent, await cluster.apply(agent, dry_run=False))
    assert progress.failed and progress.reason is not None and "OnDelete" in progress.reason


async def test_an_approved_restart_whose_workload_turned_on_delete_fails_without_waiting(
        sqlite_database_url: str) -> None:
    async with running_app(make_settings(sqlite_database_url)) as app:
        assert app.sandbox is not None
        request = await app.service.request("rollout restart statefulset/postgres -n prod",
                                            by=Person(name="alice"), via="console", origin=CONSOLE)
        on_delete(app.sandbox, "StatefulSet", "prod", "postgres")
        await app.service.sign(request.id, by=Person(name="bob"), via="console")
        await app.settle()
        done = await app.service.get(request.id)
        assert done.status is RequestStatus.failed, done
        assert done.outcome is not None and "OnDelete" in done.outcome.summary, done.outcome
