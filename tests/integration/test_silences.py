"""Silences while it runs, against the real Alertmanager (`amtool silence query` shows them) and an
Alertmanager that does not answer (the operation runs anyway; the thread and /metrics say so)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.bootstrap import App
from core.domain.approvals import Place, RequestStatus
from core.domain.events import EventType
from core.domain.policy import Person
from testkit.harness import free_port
from testkit.support import make_settings, running_app
from tests.integration.test_alertmanager import Alertmanager, _binaries

CONSOLE = Place(platform="console", channel="console")
POLICY = '[alertmanager]\nsilence = true\n\n[verify]\nmax_restarts = 3\n'
FAIL = "sandbox.signoff.dev/fail"


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    binary, amtool = _binaries()
    # Nothing here sends alerts to a receiver: the webhook only has to be a valid URL.
    manager = Alertmanager(tmp_path, binary, amtool, webhook=f"http://127.0.0.1:{free_port()}/api/v1/alerts")
    try:
        yield manager
    finally:
        manager.stop()


def _active(manager: Alertmanager) -> list[dict[str, Any]]:
    """What `amtool silence query` lists: the silences in force now."""
    silences: list[dict[str, Any]] = json.loads(manager.amtool("silence", "query", "-o", "json").stdout or "[]")
    return silences


async def _approved(app: App, action: str) -> str:
    request = await app.service.request(action, by=Person(name="alice"), via="console", origin=CONSOLE)
    await app.service.sign(request.id, by=Person(name="bob"), via="console")
    await app.execution.run_approved()
    return request.id


async def _follow(app: App, request_id: str, seconds: float) -> RequestStatus:
    app.sandbox.advance(seconds)
    await app.verification.run_due()
    for _ in range(4):
        await asyncio.sleep(0.05)
        await app.verification.run_due()
    return (await app.service.get(request_id)).status


async def test_a_rollout_is_silenced_while_it_runs_and_not_after(database_url: str, alertmanager: Alertmanager) -> None:
    settings = make_settings(database_url, SIGNOFF_ALERTMANAGER_URL=alertmanager.url)
    async with running_app(settings, policy=POLICY) as app:
        app.sandbox.set_ready_delay(5.0)
        request_id = await _approved(app, "rollout restart deployment/api -n prod")
        assert (await app.service.get(request_id)).status is RequestStatus.verifying
        during = _active(alertmanager)
        assert len(during) == 1, during
        silence = during[0]
        assert silence["createdBy"] == "signoff"
        assert f"signoff {request_id}: kubectl rollout restart deployment/api -n prod (signed by bob)" \
            in silence["comment"]
        matchers = {(m["name"], m["value"], m["isRegex"]) for m in silence["matchers"]}
        assert matchers == {("namespace", "prod", False), ("deployment", "api", False)}
        # it ends by itself at the verification deadline at the latest (the policy's verify timeout, 10 min)
        assert silence["endsAt"] > silence["startsAt"]

        assert await _follow(app, request_id, 6.0) is RequestStatus.succeeded
        assert _active(alertmanager) == []
        events = [e.type for e in await app.db.read(lambda uow: uow.timeline.for_request(request_id))]
        assert EventType.silenced in events and EventType.unsilenced in events
        assert events.index(EventType.silenced) < events.index(EventType.dry_run) < events.index(EventType.unsilenced)


async def test_a_failed_verification_ends_its_silence_at_once(database_url: str, alertmanager: Alertmanager) -> None:
    settings = make_settings(database_url, SIGNOFF_ALERTMANAGER_URL=alertmanager.url)
    async with running_app(settings, policy=POLICY) as app:
        deployment = app.sandbox.get("deployment", "prod", "api")
        deployment["metadata"].setdefault("annotations", {})[FAIL] = "CrashLoopBackOff"
        app.sandbox.put(deployment)
        request_id = await _approved(app, "rollout restart deployment/api -n prod")
        assert len(_active(alertmanager)) == 1
        status = RequestStatus.verifying
        for _ in range(8):
            status = await _follow(app, request_id, 10.0)
            if status is not RequestStatus.verifying:
                break
        # failed long before the silence's own end (minutes away): the alerts may fire again now
        assert status is RequestStatus.failed
        assert _active(alertmanager) == []
        expired = json.loads(alertmanager.amtool("silence", "query", "--expired", "-o", "json").stdout or "[]")
        assert [s["createdBy"] for s in expired] == ["signoff"]
        assert f"signoff {request_id}:" in expired[0]["comment"]


async def test_a_node_operation_is_silenced_by_its_node(database_url: str, alertmanager: Alertmanager) -> None:
    settings = make_settings(database_url, SIGNOFF_ALERTMANAGER_URL=alertmanager.url)
    async with running_app(settings, policy=POLICY) as app:
        request = await app.service.request("cordon node-2", by=Person(name="alice"), via="console",
                                            origin=CONSOLE)
        for signer in ("bob", "carol"):
            if (await app.service.get(request.id)).status is RequestStatus.pending:
                await app.service.sign(request.id, by=Person(name=signer), via="console")
        await app.execution.run_approved()
        assert (await app.service.get(request.id)).status is RequestStatus.succeeded
        expired = json.loads(alertmanager.amtool("silence", "query", "--expired", "-o", "json").stdout or "[]")
        assert [[(m["name"], m["value"]) for m in s["matchers"]] for s in expired] == [[("node", "node-2")]]


async def test_an_unreachable_alertmanager_never_holds_the_operation_back(database_url: str) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(database_url, SIGNOFF_ALERTMANAGER_URL=nobody)
    async with running_app(settings, policy=POLICY) as app:
        request_id = await _approved(app, "rollout restart deployment/api -n prod")
        status = (await app.service.get(request_id)).status
        if status is RequestStatus.verifying:
            status = await _follow(app, request_id, 2.0)
        assert status is RequestStatus.succeeded
        due = await app.db.read(lambda uow: uow.outbox.due(app.clock.now() + timedelta(days=1), limit=1000))
        notes = [m.text for m in due if m.text.startswith("🔔")]
        assert len(notes) == 1, notes
        assert "Could not silence the alerts of deployment/api in Alertmanager" in notes[0]
        assert f"{nobody} is unreachable" in notes[0] and f"{request_id} runs anyway" in notes[0]
        failures = app.metrics.snapshot().counters.get("signoff_silence_failures_total", {})
        assert list(failures.values()) == [1.0]


async def test_without_the_url_nothing_is_silenced_and_the_policy_still_loads(database_url: str) -> None:
    async with running_app(make_settings(database_url), policy=POLICY) as app:
        request_id = await _approved(app, "cordon node-2")
        for signer in ("carol",):
            if (await app.service.get(request_id)).status is RequestStatus.pending:
                await app.service.sign(request_id, by=Person(name=signer), via="console")
                await app.execution.run_approved()
        events = [e.type for e in await app.db.read(lambda uow: uow.timeline.for_request(request_id))]
        assert EventType.silenced not in events
        assert (await app.service.get(request_id)).status is RequestStatus.succeeded
