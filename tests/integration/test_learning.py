"""Incidents, playbook extraction, reaction votes and the decision tracks, through the real services,
a real SQLite file, the sandbox API server and (for alerts) the real HTTP endpoint."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from io import StringIO
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.alertmanager import parse_alertmanager
from bot.bootstrap import App
from bot.chats.console import attach_console
from bot.http import build_http_app
from core.chat.commands import ChatContext
from core.domain.approvals import Place, RequestStatus
from core.domain.playbooks import PlaybookStatus
from core.domain.policy import Person
from core.errors import AlreadySigned, NotAuthorized, NotPending
from testkit.support import make_settings, running_app

CONSOLE = Place(platform="console", channel="console")
TOKEN = "alerts-token-0123456789"

LEADS_POLICY = """
[people.alice]
groups = ["sre"]
[people.bob]
groups = ["sre"]
[people.lea]
groups = ["sre", "leads"]
[people.leo]
groups = ["sre", "leads"]

[risk.medium]
quorum = 1
approvers = ["sre"]

[playbooks]
quorum = 2
approvers = ["leads"]
"""

CRASHLOOP: dict[str, Any] = {
    "version": "4", "groupKey": '{}:{alertname="KubePodCrashLooping"}', "truncatedAlerts": 0, "status": "firing",
    "receiver": "signoff", "groupLabels": {"alertname": "KubePodCrashLooping"},
    "commonLabels": {"alertname": "KubePodCrashLooping", "namespace": "prod", "severity": "warning"},
    "commonAnnotations": {}, "externalURL": "http://alertmanager.example:9093",
    "alerts": [],
}


def alert(name: str, labels: dict[str, str], *, fingerprint: str, starts: str = "2026-11-27T10:00:00Z",
          status: str = "firing", description: str = "") -> dict[str, Any]:
    return {
        "status": status, "labels": {"alertname": name, "severity": "warning", "job": "kube-state-metrics", **labels},
        "annotations": {"summary": f"{name}.", "description": description or f"{name} on {labels}"},
        "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-27T10:30:00Z",
        "generatorURL": "http://prometheus.example/graph", "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(CRASHLOOP)
    body["alerts"] = list(alerts)
    return body


def person(name: str, *groups: str) -> Person:
    return Person(name=name, groups=frozenset(groups))


def api_pod(app: App) -> str:
    return sorted(p["metadata"]["name"] for p in app.sandbox.objects("pod", "prod", "app=api"))[0]


async def fixed_incident(app: App, incident: str, *, succeed: bool = True) -> str:
    """A request linked to `incident`, signed and executed (succeeded, or blocked: its target was deleted
    after it was requested; a target missing already then is refused at once)."""
    request = await app.service.request("rollout restart deployment/api -n prod", by=person("alice", "sre"),
                                        via="console", origin=CONSOLE, incident_id=incident)
    if not succeed:
        app.sandbox.delete_object("Deployment", "prod", "api")
    await app.service.sign(request.id, by=person("bob", "sre"), via="console")
    await app.settle()
    return request.id


EXTRACTION = [
    # (request succeeds, score, extracted, status of the playbook)
    (True, 5, True, PlaybookStatus.approved),
    (True, 4, True, PlaybookStatus.proposed),
    (True, 3, False, None),
    (True, 1, False, None),
    (False, 5, False, None),
    (False, 4, False, None),
]


@pytest.mark.parametrize(("succeed", "score", "extracted", "status"), EXTRACTION)
async def test_extraction_when_resolved_after_execution(database_url: str, succeed: bool, score: int,
                                                        extracted: bool, status: PlaybookStatus | None) -> None:
    async with running_app(make_settings(database_url)) as app:
        request_id = await fixed_incident(app, "INC-100", succeed=succeed)
        outcome = (await app.service.get(request_id)).status
        assert outcome is (RequestStatus.succeeded if succeed else RequestStatus.blocked)
        await app.incidents.resolve("INC-100", by=person("bob"), score=score, via="console")
        playbooks = await app.playbooks.all()
        assert bool(playbooks) is extracted
        if extracted:
            (playbook,) = playbooks
            assert playbook.status is status
            assert playbook.source_incident == "INC-100" and playbook.source_request == request_id
            assert playbook.effectiveness == score


@pytest.mark.parametrize(("score", "extracted"), [(5, True), (4, True), (3, False)])
async def test_extraction_when_execution_finishes_after_the_rating(database_url: str, score: int,
                                                                   extracted: bool) -> None:
    async with running_app(make_settings(database_url)) as app:
        request = await app.service.request("rollout restart deployment/web -n prod", by=person("alice"),
                                            via="console", origin=CONSOLE, incident_id="INC-7")
        await app.service.sign(request.id, by=person("bob"), via="console")
        # Rated while the approved request has not run yet: nothing to learn from so far.
        await app.incidents.resolve("INC-7", by=person("bob"), score=score, via="console")
        assert await app.playbooks.all() == []
        await app.settle()
        assert (await app.service.get(request.id)).status is RequestStatus.succeeded
        assert bool(await app.playbooks.all()) is extracted


async def test_identical_playbook_is_not_extracted_twice(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        for incident in ("INC-1", "INC-2"):
            await fixed_incident(app, incident)
            await app.incidents.resolve(incident, by=person("bob"), score=5, via="console")
        assert [p.source_incident for p in await app.playbooks.all()] == ["INC-1"]
        titles = [e.title for e in await app.service.timeline("INC-2")]
        assert "not extracted again: identical to PB-1" in titles
        with pytest.raises(NotPending, match="already rated 5/5"):
            await app.incidents.resolve("INC-2", by=person("bob"), score=4, via="console")


async def test_reaction_votes_reach_the_playbook_quorum(database_url: str) -> None:
    async with running_app(make_settings(database_url), policy=LEADS_POLICY) as app:
        transcript = StringIO()
        attach_console(app, transcript)
        await fixed_incident(app, "INC-3")
        with pytest.raises(NotAuthorized):
            await app.incidents.resolve("INC-3", by=person("mallory", "dev"), score=4, via="console")
        await app.incidents.resolve("INC-3", by=app.policy.people["bob"], score=4, via="console")
        (offered,) = await app.playbooks.all()
        assert offered.status is PlaybookStatus.proposed
        await app.settle()
        # The offer message is anchored under the playbook's id, so a reaction on it is a vote.
        anchor = await app.db.read(lambda uow: uow.outbox.anchor(offered.id, "console"))
        assert anchor is not None
        assert "Playbook PB-1 proposed from INC-3" in transcript.getvalue()

        def ctx(name: str) -> ChatContext:
            return ChatContext(platform="console", account=name, place=CONSOLE)

        refused = await app.chat.reaction(anchor.message_id, "white_check_mark", ctx("bob"))
        assert refused is not None and not refused.ok and "leads" in refused.text
        ignored = await app.chat.reaction(anchor.message_id, "tada", ctx("lea"))
        assert ignored is None
        first = await app.chat.reaction(anchor.message_id, "+1", ctx("lea"))
        assert first is not None and first.ok and "proposed" in first.text
        again = await app.chat.reaction(anchor.message_id, "👍", ctx("lea"))
        assert again is not None and not again.ok and "already voted" in again.text
        second = await app.chat.reaction(anchor.message_id, "✅", ctx("leo"))
        assert second is not None and "approved" in second.text
        (approved,) = await app.playbooks.all()
        assert approved.status is PlaybookStatus.approved and [v.person for v in approved.votes] == ["lea", "leo"]
        types = [e.type for e in await app.service.timeline("INC-3")]
        assert types.count("playbook_vote") == 2 and "playbook_approved" in types
        with pytest.raises(NotPending):
            await app.playbooks.vote(offered.id, approve=False, by=app.policy.people["leo"], via="console")


async def test_two_rejections_reject_the_playbook(database_url: str) -> None:
    async with running_app(make_settings(database_url), policy=LEADS_POLICY) as app:
        await fixed_incident(app, "INC-4")
        await app.incidents.resolve("INC-4", by=app.policy.people["bob"], score=4, via="console")
        (offered,) = await app.playbooks.all()
        await app.playbooks.vote(offered.id, approve=False, by=app.policy.people["lea"], via="slack")
        with pytest.raises(AlreadySigned):
            await app.playbooks.vote(offered.id, approve=True, by=app.policy.people["lea"], via="discord")
        rejected = await app.playbooks.vote(offered.id, approve=False, by=app.policy.people["leo"], via="slack")
        assert rejected.status is PlaybookStatus.rejected


@pytest.fixture
async def alert_app(database_url: str) -> AsyncIterator[tuple[App, str]]:
    settings = make_settings(database_url, SIGNOFF_API_TOKEN=TOKEN)
    async with running_app(settings) as app:
        app.service.default_places["console"] = "console"
        server = TestServer(build_http_app(app))
        await server.start_server()
        try:
            yield app, str(server.make_url("/api/v1/alerts"))
        finally:
            await server.close()


async def post_alerts(url: str, body: object, token: str = TOKEN) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(
        url, data=json.dumps(body), headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.json()


async def test_alertmanager_group_becomes_incidents_and_rule_proposals(alert_app: tuple[App, str]) -> None:
    app, url = alert_app
    pod = api_pod(app)
    group = payload(
        alert("KubePodCrashLooping", {"namespace": "prod", "pod": pod, "container": "api"}, fingerprint="f1"),
        alert("KubeNodeNotReady", {"node": "node-2"}, fingerprint="f2"),
        alert("SomethingUnknown", {"namespace": "prod"}, fingerprint="f3"),
    )
    status, body = await post_alerts(url, group)
    assert status == 200, body
    tracks = {a["fingerprint"]: (a["track"], a["request_id"]) for a in body["alerts"]}
    assert tracks["f1"][0] == "rules" and tracks["f2"][0] == "rules" and tracks["f3"] == ("none", None)
    crash = await app.service.get(tracks["f1"][1])
    assert crash.operation.command() == "kubectl rollout restart deployment/api -n prod"
    assert crash.requested_by == "signoff" and crash.incident_id is not None
    cordon = await app.service.get(tracks["f2"][1])
    assert cordon.operation.command() == "kubectl cordon node-2" and cordon.risk == "high"
    # Alertmanager repeats the group on repeat_interval: nothing new is created.
    status, again = await post_alerts(url, group)
    assert status == 200 and all(a["duplicate"] for a in again["alerts"])
    assert len(await app.service.pending()) == 2
    # The crash loop clears: the incident resolves, its rating still comes from people.
    cleared = alert("KubePodCrashLooping", {"namespace": "prod", "pod": pod, "container": "api"}, fingerprint="f1",
                    status="resolved")
    status, body = await post_alerts(url, payload(cleared))
    incident = await app.incidents.incident(body["alerts"][0]["incident_id"])
    assert incident.status == "resolved" and incident.effectiveness is None


@pytest.mark.parametrize(("body", "message"), [
    ({"version": "3", "alerts": []}, "version 3"),
    ({"version": "4"}, "no `alerts`"),
    ([1, 2], "JSON object"),
])
async def test_bad_alert_payloads_are_refused_and_store_nothing(alert_app: tuple[App, str], body: object,
                                                                message: str) -> None:
    app, url = alert_app
    status, answer = await post_alerts(url, body)
    assert status == 422 and message in answer["message"]
    assert await app.db.read(lambda uow: uow.incidents.list_open()) == []
    assert (await post_alerts(url, payload(), token="wrong"))[0] == 401


async def test_the_next_similar_alert_gets_the_playbook_proposal(alert_app: tuple[App, str]) -> None:
    app, url = alert_app
    pod = api_pod(app)
    labels = {"namespace": "prod", "pod": pod, "container": "api"}
    _, body = await post_alerts(url, payload(alert("KubePodCrashLooping", labels, fingerprint="a1")))
    first = body["alerts"][0]
    await app.service.sign(first["request_id"], by=person("bob"), via="console")
    await app.settle()
    await app.incidents.resolve(first["incident_id"], by=person("bob"), score=5, via="console")
    (playbook,) = await app.playbooks.all()
    assert playbook.status is PlaybookStatus.approved

    new_pod = api_pod(app)  # the restart replaced the pods
    again = {"namespace": "prod", "pod": new_pod, "container": "api"}
    _, body = await post_alerts(url, payload(alert("KubePodCrashLooping", again, fingerprint="a1",
                                                   starts="2026-11-28T09:00:00Z", description="another crash")))
    second = body["alerts"][0]
    assert second["track"] == "playbook"
    request = await app.service.get(second["request_id"])
    assert request.proposal is not None and request.proposal.playbook_id == playbook.id
    assert request.proposal.similarity is not None and request.proposal.similarity >= 0.85
    # Elsewhere (staging) the same alert is not the playbook's business: the rules track answers.
    staging_pod = sorted(p["metadata"]["name"] for p in app.sandbox.objects("pod", "staging", "app=api"))[0]
    _, body = await post_alerts(url, payload(alert("KubePodCrashLooping", {"namespace": "staging", "pod": staging_pod},
                                                   fingerprint="s1")))
    assert body["alerts"][0]["track"] == "rules"
    await app.service.sign(second["request_id"], by=person("bob"), via="console")
    await app.settle()
    (used,) = await app.playbooks.all()
    assert (used.times_proposed, used.times_executed, used.times_succeeded) == (1, 1, 1)


async def test_llm_track_answers_when_no_playbook_and_is_checked_by_the_parser(database_url: str) -> None:
    answers = iter([
        {"action": "kubectl scale deployment/web --replicas=4 -n prod", "rationale": "traffic doubled"},
        {"action": "kubectl exec -it web-0 -- sh", "rationale": "have a look"},
    ])

    async def completions(request: web.Request) -> web.Response:
        content = json.dumps(next(answers))
        return web.json_response({"choices": [{"message": {"role": "assistant", "content": content}}]})

    llm = web.Application()
    llm.router.add_post("/v1/chat/completions", completions)
    server = TestServer(llm)
    await server.start_server()
    try:
        settings = make_settings(database_url, SIGNOFF_LLM_URL=str(server.make_url("/v1")), SIGNOFF_LLM_API_KEY="k-1")
        async with running_app(settings) as app:
            labels = {"alertname": "CPUThrottlingHigh", "namespace": "prod", "deployment": "web"}
            outcomes = await app.alerts.ingest_alerts(
                parse_alertmanager(payload(alert("HighLatency", labels, fingerprint="l1"))))
            assert outcomes[0].track == "llm"
            request = await app.service.get(outcomes[0].request_id or "")
            assert request.operation.command() == "kubectl scale deployment/web --replicas=4 -n prod"
            assert request.proposal is not None and "traffic doubled" in request.proposal.rationale
            # An answer outside the allow-list is discarded; the rules track (or the humans) take over.
            # (Another workload: the same alert on deployment/web would join the open incident.)
            other = {**labels, "deployment": "worker"}
            outcomes = await app.alerts.ingest_alerts(
                parse_alertmanager(payload(alert("HighLatency", other, fingerprint="l2"))))
            assert outcomes[0].track in ("rules", "none")
    finally:
        await server.close()
