"""The change on the card (issue 21, items 1 and 5, and its bad input): what the dry run made at request time
shows appears on Slack (the fake Web API's chat.postMessage blocks), Discord (the embed a real discord.py
client sent), the console transcript, the HTTP API and the timeline. A definite refusal of the dry run, or
a scale that a HorizontalPodAutoscaler would undo, refuses the request at once: nothing stored, no card.
A transient failure keeps the request, and its card says the change could not be previewed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from io import StringIO
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.bootstrap import App
from bot.chats.console import attach_console
from bot.http import build_http_app
from core.domain.events import EventType
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.sandbox import HookedSandbox
from testkit.support import discord as d
from testkit.support import make_settings, running_app
from testkit.support.slack import ALICE, TEAM_POLICY, card_text, slack_world

TOKEN = "api-token-for-tests-0123"
SCALE = "scale deployment/api --replicas=6 -n prod"


def hpa(namespace: str, name: str, target: str, low: int, high: int) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "minReplicas": low, "maxReplicas": high}}


def argo(sandbox: HookedSandbox, namespace: str, name: str, application: str) -> None:
    workload = sandbox.get("Deployment", namespace, name)
    assert workload is not None
    workload["metadata"]["labels"]["argocd.argoproj.io/instance"] = application
    sandbox.put(workload)


def non_dry_writes(sandbox: HookedSandbox) -> list[str]:
    return [f"{r.method} {r.path}" for r in sandbox.requests if r.method != "GET" and r.query.get("dryRun") != "All"]


# ---- the HTTP API and the timeline


@pytest.fixture
async def api(sqlite_database_url: str) -> AsyncIterator[tuple[App, str]]:
    async with running_app(make_settings(sqlite_database_url, SIGNOFF_API_TOKEN=TOKEN)) as app:
        server = TestServer(build_http_app(app))
        await server.start_server()
        try:
            yield app, str(server.make_url("/api/v1"))
        finally:
            await server.close()


async def call(method: str, url: str, body: object = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(
        method, url, data=json.dumps(body) if body is not None else None,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.json()


async def create(base: str, action: str) -> tuple[int, Any]:
    return await call("POST", base + "/requests", {"action": action, "requested_by": "alice"})


async def test_the_api_and_the_timeline_show_the_change(api: tuple[App, str]) -> None:
    app, base = api
    status, body = await create(base, SCALE)
    assert status == 201, body
    assert body["changes"] == ["replicas: 3 → 6"]
    assert body["preview"]["lines"] == ["replicas: 3 → 6"]
    status, got = await call("GET", f"{base}/requests/{body['id']}")
    assert status == 200 and got["changes"] == ["replicas: 3 → 6"]
    [requested] = [e for e in got["timeline"] if e["type"] == EventType.requested.value]
    assert requested["detail"].endswith("; change: replicas: 3 → 6")

    status, body = await create(base, "rollout undo deployment/api -n prod")
    assert status == 201, body
    assert body["changes"] == ["template: revision 3 → revision 2",
                               "image (api): ghcr.io/acme/api:1.4.2 → ghcr.io/acme/api:1.4.1"]
    status, body = await create(base, "cordon node-2")
    assert status == 201 and body["changes"] == ["unschedulable: false → true"], body
    assert app.sandbox is not None and non_dry_writes(app.sandbox) == []  # previews change nothing


async def test_the_web_view_shows_the_change_as_a_diff(api: tuple[App, str]) -> None:
    _app, base = api
    assert (await create(base, SCALE))[0] == 201
    async with aiohttp.ClientSession() as session, session.get(
            base.replace("/api/v1", "/ui/requests/R-1"), headers={"Authorization": f"Bearer {TOKEN}"}) as response:
        assert response.status == 200
        page = await response.text()
    assert '<span class="dminus">- replicas: 3</span>' in page and '<span class="dplus">+ replicas: 6</span>' in page


async def test_a_rollback_with_no_previous_revision_is_refused_at_request_time(api: tuple[App, str]) -> None:
    """Tried from outside: it was posted for two signatures and failed only after both were given."""
    app, base = api
    assert app.sandbox is not None
    single = app.sandbox.get("Deployment", "prod", "worker")
    assert single is not None
    single["metadata"]["name"] = "single"
    single["metadata"].pop("uid", None)
    single["spec"]["selector"] = {"matchLabels": {"app": "single"}}
    single["spec"]["template"]["metadata"]["labels"] = {"app": "single"}
    app.sandbox.put(single)
    status, body = await create(base, "rollout undo deployment/single -n prod")
    assert status == 422, body
    assert body["error"] == "dry_run_refused"
    assert "deployment/single in prod has no previous revision to roll back to" in body["message"]
    assert "Nothing was stored and nobody was asked to sign." in body["message"]
    assert (await call("GET", base + "/requests/R-1"))[0] == 404
    assert await app.db.read(lambda uow: uow.outbox.backlog()) == 0  # no card for anyone to sign


async def test_a_missing_target_is_refused_at_request_time(api: tuple[App, str]) -> None:
    app, base = api
    status, body = await create(base, "rollout restart deployment/ghost -n prod")
    assert status == 422 and body["error"] == "dry_run_refused", body
    assert "deployment/ghost in namespace prod does not exist" in body["message"]
    assert not any((await app.db.read(lambda uow: uow.requests.counts())).values())


async def test_an_invalid_dry_run_is_refused_with_the_apis_reason(api: tuple[App, str]) -> None:
    app, base = api
    assert isinstance(app.sandbox, HookedSandbox)
    app.sandbox.inject("PATCH", r"/deployments/web/scale$", 422, "Invalid",
                       message='Scale.autoscaling "web" is invalid: spec.replicas: must be at most 5')
    status, body = await create(base, "scale deployment/web --replicas=7 -n prod")
    assert status == 422 and body["error"] == "dry_run_refused", body
    assert "422 Invalid" in body["message"] and "must be at most 5" in body["message"]


async def test_a_forbidden_read_is_refused_never_signed_blind(api: tuple[App, str]) -> None:
    app, base = api
    assert isinstance(app.sandbox, HookedSandbox)
    app.sandbox.inject("GET", r"/namespaces/prod/deployments/web$", 403, "Forbidden", times=None,
                       message='deployments.apps "web" is forbidden: User "signoff" cannot get resource')
    status, body = await create(base, "rollout restart deployment/web -n prod")
    assert status == 422 and body["error"] == "dry_run_refused", body
    assert "nobody signs blind" in body["message"] and "403 Forbidden" in body["message"]
    assert (await call("GET", base + "/requests/R-1"))[0] == 404


async def test_a_transient_failure_keeps_the_request_and_says_so(api: tuple[App, str]) -> None:
    app, base = api
    assert isinstance(app.sandbox, HookedSandbox)
    app.sandbox.inject("PATCH", r"/deployments/web/scale$", 503, "ServiceUnavailable", times=None)
    status, body = await create(base, "scale deployment/web --replicas=4 -n prod")
    assert status == 201, body
    [line] = body["changes"]
    assert line.startswith("could not be previewed: the dry run could not be made now (503 ServiceUnavailable)")
    status, body = await create(base, "scale deployment/web --replicas=5 -n prod")
    app.sandbox.clear_faults()
    assert status == 201 and body["changes"][0].startswith("could not be previewed"), body
    status, body = await create(base, "scale deployment/web --replicas=3 -n prod")
    assert status == 201 and body["changes"] == ["replicas: 2 → 3"], body


# ---- will it stick?


async def test_a_scale_that_an_hpa_would_undo_is_refused_and_a_restart_names_it(api: tuple[App, str]) -> None:
    app, base = api
    assert app.sandbox is not None
    app.sandbox.put(hpa("prod", "api-hpa", "api", 3, 10))
    status, body = await create(base, "scale deployment/api --replicas=20 -n prod")
    assert status == 422, body
    assert body["error"] == "autoscaled"
    assert body["message"].startswith(
        "prod/api is managed by HorizontalPodAutoscaler api-hpa (min 3, max 10), which would undo a scale "
        "within seconds; change the HPA instead")
    assert (await call("GET", base + "/requests/R-1"))[0] == 404

    status, body = await create(base, "rollout restart deployment/api -n prod")
    assert status == 201, body
    assert body["changes"] == ["restartedAt: set", "⚠️ autoscaled by HorizontalPodAutoscaler api-hpa (min 3, "
                               "max 10): its replica count is the HPA's to set"]


async def test_an_argo_cd_target_gets_a_warning(api: tuple[App, str]) -> None:
    app, base = api
    assert app.sandbox is not None
    argo(app.sandbox, "prod", "web", "shop")
    status, body = await create(base, "scale deployment/web --replicas=3 -n prod")
    assert status == 201, body
    assert body["changes"] == ["replicas: 2 → 3",
                               "⚠️ managed by Argo CD application shop: a sync may revert a scale or rollback"]


# ---- the chat surfaces


async def test_slack_shows_the_change_on_the_card(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        assert world.app.sandbox is not None
        argo(world.app.sandbox, "prod", "api", "shop")
        assert await world.command(ALICE, f"request {SCALE}") == 200
        await world.settle()
        [posted] = [c for c in world.fake.calls if c.method == "chat.postMessage" and "R-1" in json.dumps(c.args)]
        shown = json.dumps(posted.args, ensure_ascii=False)
        assert "replicas: 3 → 6" in shown
        text = card_text(world.card("R-1"))
        assert "*Change*" in text and "replicas: 3 → 6" in text
        assert "managed by Argo CD application shop" in text


async def test_discord_shows_the_change_in_the_embed(sqlite_database_url: str) -> None:
    async with FakeDiscord() as fake:
        for uid, name in ((d.ALICE, "alice"), (d.BOB, "bob"), (d.CAROL, "carol")):
            fake.add_member(uid, name)
        async with d.discord_service(fake, sqlite_database_url) as app:
            assert app.sandbox is not None
            app.sandbox.put(hpa("prod", "api-hpa", "api", 3, 10))
            replies = await d.command(fake, d.ALICE, "request", action="rollout restart deployment/api -n prod")
            assert d.followup_text(replies).startswith("📝 R-1"), d.followup_text(replies)
            card = await d.wait_card(fake, "R-1")
            fields = {f["name"]: f["value"] for f in card["embeds"][0]["fields"]}
            assert fields["Change"] == ("restartedAt: set\n⚠️ autoscaled by HorizontalPodAutoscaler api-hpa "
                                        "(min 3, max 10): its replica count is the HPA's to set")
            # The scale it would undo is refused to the requester, privately; no card.
            replies = await d.command(fake, d.ALICE, "request", action="scale deployment/api --replicas=20 -n prod")
            text = d.followup_text(replies)
            assert "HorizontalPodAutoscaler api-hpa (min 3, max 10)" in text and "change the HPA" in text
            assert d.card_of(fake, "R-2") is None


async def test_the_console_shows_the_change_and_refusals(sqlite_database_url: str) -> None:
    async with running_app(make_settings(sqlite_database_url)) as app:
        transcript = StringIO()
        console = attach_console(app, transcript)
        assert await console.line(f"request {SCALE}")
        await app.settle()
        assert "replicas: 3 → 6" in transcript.getvalue()
        pod = sorted(p["metadata"]["name"] for p in (app.sandbox.objects("pod", "prod", "app=web")
                                                     if app.sandbox else []))[0]
        assert await console.line(f"request delete pod {pod} -n prod")
        await app.settle()
        assert f"pod {pod}: deleted (deployment/web recreates it)" in transcript.getvalue()
        assert await console.line("request rollout undo deployment/web -n prod")
        await app.settle()
        assert "deployment/web in prod has no previous revision to roll back to" in transcript.getvalue()
        counts = await app.db.read(lambda uow: uow.requests.counts())
        assert sum(counts.values()) == 2, counts
