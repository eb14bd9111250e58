"""How many calls a request makes of the API server, from its creation to its verified outcome (issue 17).

Each call costs signoff most of a millisecond of CPU (the client, urllib3, a thread hop): the calls are
counted here, one by one, so the count cannot silently grow again. When a change needs another call, it
says so here.
"""

from __future__ import annotations

import asyncio

import pytest

from adapters.kubernetes import executor
from adapters.kubernetes.executor import KubernetesCluster
from bot.bootstrap import App
from core.domain.approvals import Place, RequestStatus
from core.domain.operations import parse_operation
from core.domain.policy import Person
from testkit.fakes.sandbox import HookedSandbox, RecordedRequest
from testkit.support import make_settings, running_app

pytest_plugins = ("tests.fixtures_kubernetes",)

CONSOLE = Place(platform="console", channel="console")
DEPLOYMENT = "/apis/apps/v1/namespaces/prod/deployments"
PODS = "/api/v1/namespaces/prod/pods"


@pytest.fixture(autouse=True)
def _no_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    # What is cached lives FACTS_TTL_S (2 s): on a slow machine, a test must not see it expire midway.
    monkeypatch.setattr(executor, "FACTS_TTL_S", 3600.0)


def _calls(app: App) -> list[str]:
    """The recorded calls since the last look, as `METHOD path [dry run|watch|selector]`, in the order made."""
    return _made(app.sandbox)


def _made(sandbox: HookedSandbox) -> list[str]:
    described = [_describe(r) for r in sandbox.requests]
    sandbox.clear_requests()
    return described


def _describe(request: RecordedRequest) -> str:
    query = request.query
    flags = [name for name, on in (("dry run", query.get("dryRun") == "All"), ("watch", query.get("watch") == "true"),
                                   ("by label", "labelSelector" in query), ("by name", "fieldSelector" in query)) if on]
    return " ".join([request.method, request.path, *(f"[{flag}]" for flag in flags)])


async def _signed(app: App, request_id: str) -> None:
    for signer in ("bob", "carol", "dave"):
        if (await app.service.get(request_id)).status is RequestStatus.pending:
            await app.service.sign(request_id, by=Person(name=signer), via="console")


async def test_a_restart_makes_nine_calls_and_two_watches_from_creation_to_verified(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        _calls(app)
        request = await app.service.request("rollout restart deployment/api -n prod", by=Person(name="alice"),
                                            via="console", origin=CONSOLE)
        # The blast radius (the workload, its pods, the services in front of them), then the preview from the
        # same read of the workload: its dry run and who else scales it.
        assert _calls(app) == [
            f"GET {DEPLOYMENT}/api",
            f"GET {PODS} [by label]",
            "GET /api/v1/namespaces/prod/services",
            f"PATCH {DEPLOYMENT}/api [dry run]",
            "GET /apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers",
        ]
        await _signed(app, request.id)
        assert _calls(app) == []  # signing reads nothing of the cluster

        await app.execution.run_approved()
        done = await app.service.get(request.id)
        assert done.status is RequestStatus.succeeded, done.outcome
        calls = _calls(app)
        # Before it runs, the workload alone (its pin); the dry run the product promises, the real call; then
        # verification follows the rollout with two watches and the one list the pods' watch starts from.
        assert calls == [
            f"GET {DEPLOYMENT}/api",
            f"PATCH {DEPLOYMENT}/api [dry run]",
            f"PATCH {DEPLOYMENT}/api",
            f"GET {DEPLOYMENT} [watch] [by name]",
            f"GET {PODS} [by label]",
            f"GET {PODS} [watch] [by label]",
        ]
        assert len([c for c in calls if "[watch]" not in c]) == 4


async def test_a_scale_reads_only_its_workload_again_for_the_pin_and_the_risk_floor(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        request = await app.service.request("scale deployment/api --replicas=4 -n prod", by=Person(name="alice"),
                                            via="console", origin=CONSOLE)
        await _signed(app, request.id)
        _calls(app)
        await app.execution.run_approved()
        assert (await app.service.get(request.id)).status is RequestStatus.succeeded
        before_the_dry_run = _calls(app)[:2]
        assert before_the_dry_run == [f"GET {DEPLOYMENT}/api", f"PATCH {DEPLOYMENT}/api/scale [dry run]"]


# ---- the executor's facts cache, and the target read alone


async def test_a_write_drops_the_cached_facts_it_can_change_and_only_those(
        sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    api, web = parse_operation("rollout restart deployment/api -n prod"), parse_operation("scale deployment/web "
                                                                                          "--replicas=3 -n prod")
    staging = parse_operation("rollout restart deployment/web -n staging")
    node, other_node = parse_operation("cordon node-2"), parse_operation("uncordon node-3")
    for op in (api, web, staging, node, other_node):
        await cluster.inspect(op)
    _made(sandbox)
    for op in (api, web, staging, node, other_node):
        await cluster.inspect(op)
    assert _made(sandbox) == []  # all cached

    await cluster.apply(api, dry_run=True)
    for op in (api, web, staging, node, other_node):
        await cluster.inspect(op)
    assert _made(sandbox) == [f"PATCH {DEPLOYMENT}/api [dry run]"]  # a dry run changes nothing

    await cluster.apply(api, dry_run=False)
    _made(sandbox)
    for op in (api, web, staging, node, other_node):
        await cluster.inspect(op)
    read_again = {call.split()[1] for call in _made(sandbox)}
    # Its namespace (the pods and replicas of every workload there) and the nodes (their pods); not staging.
    assert {f"{DEPLOYMENT}/api", f"{DEPLOYMENT}/web", "/api/v1/nodes/node-2", "/api/v1/nodes/node-3"} <= read_again
    assert not any("staging" in path for path in read_again)

    await cluster.apply(node, dry_run=False)
    _made(sandbox)
    for op in (api, web, staging, node, other_node):
        await cluster.inspect(op)
    # node-2 alone (the node, the pods on it, the services of every namespace)
    assert {call.split()[1] for call in _made(sandbox)} == {"/api/v1/nodes/node-2", "/api/v1/pods", "/api/v1/services"}

    await cluster.apply(parse_operation("drain node-1"), dry_run=False)
    _made(sandbox)
    await cluster.inspect(staging)
    assert "GET /apis/apps/v1/namespaces/staging/deployments/web" in _made(sandbox)  # a drain: everything


async def test_the_preview_starts_from_the_workload_inspect_just_read_unless_it_was_written_since(
        sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    restart = parse_operation("rollout restart deployment/api -n prod")
    await cluster.inspect(restart)
    _made(sandbox)
    preview = await cluster.preview(restart)
    assert preview.lines and f"GET {DEPLOYMENT}/api" not in _made(sandbox)

    await cluster.apply(restart, dry_run=False)
    _made(sandbox)
    await cluster.preview(restart)
    assert _made(sandbox)[0] == f"GET {DEPLOYMENT}/api"

    # A rollback's dry run is guarded by the resourceVersion it read: it always reads its own.
    undo = parse_operation("rollout undo deployment/api -n prod")
    await cluster.inspect(undo)
    _made(sandbox)
    await cluster.preview(undo)
    assert _made(sandbox)[0] == f"GET {DEPLOYMENT}/api"


async def test_the_target_read_alone_is_one_call_and_drops_what_the_cache_held_of_it(
        sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    scale = parse_operation("scale deployment/api --replicas=2 -n prod")
    restart = parse_operation("rollout restart deployment/api -n prod")
    cached = await cluster.inspect(scale)
    await cluster.inspect(restart)
    assert cached.pods and cached.services
    api = sandbox.get("deployment", "prod", "api")
    assert api is not None
    api["spec"]["replicas"] = 6  # someone else scales it
    sandbox.put(api)
    _made(sandbox)

    alone = await cluster.read_target(scale)
    assert _made(sandbox) == [f"GET {DEPLOYMENT}/api"]
    assert alone.exists and alone.replicas == 6 and alone.observed == cached.observed
    assert alone.pods == () and alone.services == ()
    # What the cache held of the target, under any operation, is read again: it may be what changed.
    assert (await cluster.inspect(restart)).replicas == 6
    assert _made(sandbox)[0] == f"GET {DEPLOYMENT}/api"

    pod = sandbox.objects("pod", "prod", "app=api")[0]["metadata"]
    delete = parse_operation(f"delete pod {pod['name']} -n prod")
    assert (await cluster.read_target(delete)).observed == (await cluster.inspect(delete, fresh=True)).observed
    missing = await cluster.read_target(parse_operation("rollout restart deployment/nope -n prod"))
    assert not missing.exists and missing.note == "deployment/nope not found in namespace prod"
    assert (await cluster.read_target(parse_operation("cordon node-9"))).exists is False


async def test_the_services_of_a_namespace_are_listed_once_for_the_requests_made_there_meanwhile(
        sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    api = parse_operation("rollout restart deployment/api -n prod")
    web = parse_operation("rollout restart deployment/web -n prod")
    staging = parse_operation("rollout restart deployment/web -n staging")
    services = {op: (await cluster.inspect(op)).services for op in (api, web, staging)}
    listed = [call for call in _made(sandbox) if call.endswith("/services")]
    assert listed == ["GET /api/v1/namespaces/prod/services", "GET /api/v1/namespaces/staging/services"]
    assert services[api] != services[web]  # one list, each target's own services in it

    assert (await cluster.inspect(web, fresh=True)).services == services[web]
    assert "GET /api/v1/namespaces/prod/services" in _made(sandbox)  # fresh: listed again


async def test_facts_read_while_a_write_is_under_way_are_not_served_after_it(
        sandbox: HookedSandbox, cluster: KubernetesCluster) -> None:
    scale = parse_operation("scale deployment/api --replicas=5 -n prod")
    sandbox.inject("PATCH", r"/deployments/api/scale$", status=None, delay=0.3)  # the write answers late
    writing = asyncio.create_task(cluster.apply(scale, dry_run=False))
    while not any(r.method == "PATCH" for r in sandbox.requests):
        await asyncio.sleep(0.01)
    assert (await cluster.inspect(scale)).replicas != 5  # read while the write is held back
    await writing
    assert (await cluster.inspect(scale)).replicas == 5
