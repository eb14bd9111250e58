"""Silences while it runs, on the wire: a fake Alertmanager (aiohttp on loopback) records what signoff
sends (`POST /api/v2/silences`, `DELETE /api/v2/silence/{id}`), answers errors on demand, and shows
that another process ends a silence it did not make (the id is in the timeline)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from adapters.silences.alertmanager import AlertmanagerSilencer
from bot.bootstrap import App
from bot.http import build_http_app
from core.app.silences import SilenceKeeper
from core.domain.approvals import Place, RequestStatus
from core.domain.events import EventType
from core.domain.policy import Person
from testkit.support import MovableClock, make_settings, running_app

CONSOLE = Place(platform="console", channel="console")
POLICY = '[alertmanager]\nsilence = true\n\n[verify]\ntimeout = "7m"\n'


class FakeAlertmanager:
    """Records each call; `create_status` / `expire_status` make it answer an error instead."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.expired: list[str] = []
        self.create_status = 200
        self.expire_status = 200

    async def create(self, request: web.Request) -> web.Response:
        if self.create_status != 200:
            return web.Response(status=self.create_status, text="silences are read-only today")
        self.created.append(await request.json())
        return web.json_response({"silenceID": f"s-{len(self.created)}"})

    async def expire(self, request: web.Request) -> web.Response:
        if self.expire_status != 200:
            return web.Response(status=self.expire_status, text="try later")
        self.expired.append(request.match_info["id"])
        return web.Response(status=200)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeAlertmanager, str]]:
    manager = FakeAlertmanager()
    app = web.Application()
    app.router.add_post("/api/v2/silences", manager.create)
    app.router.add_delete("/api/v2/silence/{id}", manager.expire)
    server = TestServer(app)
    await server.start_server()
    try:
        yield manager, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def _approved(app: App, action: str) -> str:
    request = await app.service.request(action, by=Person(name="alice"), via="console", origin=CONSOLE)
    await app.service.sign(request.id, by=Person(name="bob"), via="console")
    await app.execution.run_approved()
    return request.id


async def _finish(app: App, clock: MovableClock, request_id: str) -> RequestStatus:
    status = (await app.service.get(request_id)).status
    for _ in range(6):
        if status is not RequestStatus.verifying:
            break
        app.sandbox.advance(3.0)
        clock.advance(seconds=3.0)
        await app.verification.run_due()
        await asyncio.sleep(0.05)
        status = (await app.service.get(request_id)).status
    return status


async def _notes(app: App) -> list[str]:
    due = await app.db.read(lambda uow: uow.outbox.due(app.clock.now() + timedelta(days=1), limit=1000))
    return [m.text for m in due if m.text.startswith("🔔")]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_the_silence_on_the_wire_lasts_until_the_verification_deadline(
        database_url: str, fake: tuple[FakeAlertmanager, str]) -> None:
    manager, url = fake
    clock = MovableClock()
    async with running_app(make_settings(database_url, SIGNOFF_ALERTMANAGER_URL=url), policy=POLICY,
                           clock=clock) as app:
        app.sandbox.set_ready_delay(2.0)
        request_id = await _approved(app, "delete pod postgres-0 -n prod")
        assert len(manager.created) == 1 and manager.expired == []
        body = manager.created[0]
        assert body["matchers"] == [
            {"name": "namespace", "value": "prod", "isRegex": False, "isEqual": True},
            {"name": "pod", "value": "postgres-0", "isRegex": False, "isEqual": True},
        ]
        assert body["createdBy"] == "signoff"
        command = "kubectl delete pod/postgres-0 -n prod"
        assert body["comment"].startswith(f"signoff {request_id}: {command} (signed by bob)")
        assert _at(body["startsAt"]) == clock.now()
        assert _at(body["endsAt"]) == clock.now() + timedelta(minutes=7)  # the verification deadline ([verify])
        assert await _finish(app, clock, request_id) is RequestStatus.succeeded
        assert manager.expired == ["s-1"]
        events = await app.db.read(lambda uow: uow.timeline.for_request(request_id))
        assert [e.detail for e in events if e.type is EventType.silenced] == ['silence s-1 · namespace="prod", '
                                                                             'pod="postgres-0"']


async def test_another_process_ends_the_silence_it_finds_in_the_timeline(
        database_url: str, fake: tuple[FakeAlertmanager, str]) -> None:
    manager, url = fake
    clock = MovableClock()
    async with running_app(make_settings(database_url, SIGNOFF_ALERTMANAGER_URL=url), policy=POLICY,
                           clock=clock) as app:
        app.sandbox.set_ready_delay(30.0)
        request_id = await _approved(app, "rollout restart deployment/api -n prod")
        assert manager.created and manager.expired == []
        # a restarted replica: nothing in memory, only the database
        silencer = AlertmanagerSilencer(url)
        try:
            other = SilenceKeeper(silencer=silencer, store=app.db, clock=app.clock, metrics=app.metrics,
                                  window=timedelta(minutes=7))
            request = await app.service.get(request_id)
            await other.end(request)
            assert manager.expired == ["s-1"]
            await other.end(request)  # already ended: not expired twice
            assert manager.expired == ["s-1"]
        finally:
            await silencer.close()


async def test_an_alertmanager_that_refuses_is_noted_and_counted_at_each_step(
        database_url: str, fake: tuple[FakeAlertmanager, str]) -> None:
    manager, url = fake
    clock = MovableClock()
    async with running_app(make_settings(database_url, SIGNOFF_ALERTMANAGER_URL=url), policy=POLICY,
                           clock=clock) as app:
        manager.create_status = 503
        first = await _approved(app, "rollout restart deployment/api -n prod")
        assert await _finish(app, clock, first) is RequestStatus.succeeded
        manager.create_status, manager.expire_status = 200, 500
        second = await _approved(app, "rollout restart deployment/web -n prod")
        assert await _finish(app, clock, second) is RequestStatus.succeeded
        notes = await _notes(app)
        assert len(notes) == 2, notes
        assert "Alertmanager answered 503: silences are read-only today" in notes[0]
        assert f"{first} runs anyway" in notes[0]
        assert f"Could not end the Alertmanager silence of {second} (Alertmanager answered 500: try later)" in notes[1]
        assert "expire silence s-1 in Alertmanager now" in notes[1]
        server = TestServer(build_http_app(app))
        await server.start_server()
        try:
            async with ClientSession() as http, http.get(str(server.make_url("/metrics"))) as response:
                exposed = await response.text()
        finally:
            await server.close()
        lines = [line for line in exposed.splitlines() if line.startswith("signoff_silence_failures_total{")]
        assert len(lines) == 2, lines
        assert any('step="create"' in line and line.endswith(" 1.0") for line in lines)
        assert any('step="expire"' in line and line.endswith(" 1.0") for line in lines)


async def test_an_interrupted_request_ends_its_silence_when_the_sweep_finds_it(
        database_url: str, fake: tuple[FakeAlertmanager, str]) -> None:
    manager, url = fake
    clock = MovableClock()
    async with running_app(make_settings(database_url, SIGNOFF_ALERTMANAGER_URL=url), policy=POLICY,
                           clock=clock) as app:
        request = await app.service.request("rollout restart deployment/api -n prod", by=Person(name="alice"),
                                            via="console", origin=CONSOLE)
        await app.service.sign(request.id, by=Person(name="bob"), via="console")
        app.sandbox.inject("PATCH", r"/deployments/api$", status=None, delay=30.0, times=1)
        # the worker dies in its dry run, after the silence was made
        worker = asyncio.create_task(app.execution.run_approved())
        for _ in range(100):
            if manager.created:
                break
            await asyncio.sleep(0.05)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        assert manager.created and manager.expired == []
        clock.advance(minutes=5)  # past the execution lease
        await app.maintenance.sweep()
        assert (await app.service.get(request.id)).status is RequestStatus.interrupted
        assert manager.expired == ["s-1"]
