"""The SIEM stream over real HTTP to a loopback receiver: CloudEvents in chain order, at least once, through
outages and restarts, one sender among replicas, and the lag on /metrics."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.bootstrap import App
from bot.metrics import render_metrics
from core.domain.events import GENESIS_HASH, chain_hash
from core.domain.policy import Person
from testkit.support import MovableClock, make_settings, running_app

TOKEN = "siem-token-0123456789abcdef"
ALICE, BOB = Person(name="alice"), Person(name="bob")


class Receiver:
    """A SIEM's HTTP collector: records what it accepts; can answer 500, or hold answers until released."""

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.seen_ids: list[str] = []
        self.failing = False
        self.held: asyncio.Event | None = None
        self.headers: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.headers.append(dict(request.headers))
        self.seen_ids.append(body["id"])
        if self.held is not None:
            await self.held.wait()
        if self.failing:
            return web.Response(status=500, text="collector down")
        self.accepted.append(body)
        return web.Response(status=202)

    def unique_in_order(self) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for event in self.accepted:
            found.setdefault(event["id"], event)
        return list(found.values())


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    collector = Receiver()
    app = web.Application()
    app.router.add_post("/events", collector.handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield collector, str(server.make_url("/events"))
    finally:
        await server.close()


def _settings(database_url: str, url: str) -> Any:
    return make_settings(database_url, SIGNOFF_AUDIT_WEBHOOK=url, SIGNOFF_AUDIT_WEBHOOK_TOKEN=TOKEN)


async def _activity(app: App, count: int = 3) -> None:
    for number in range(count):
        request = await app.service.request(f"scale deployment/web --replicas={number + 2} -n staging",
                                            by=ALICE, via="console")
        await app.service.sign(request.id, by=BOB, via="console")


async def test_every_event_arrives_as_a_cloudevent_in_chain_order(database_url: str,
                                                                  receiver: tuple[Receiver, str]) -> None:
    collector, url = receiver
    async with running_app(_settings(database_url, url)) as app:
        assert app.audit_stream is not None
        await _activity(app)
        await app.settle()
        sent = await app.audit_stream.run_once()
        head = await app.db.read(lambda uow: uow.timeline.head())
        assert head is not None and sent == head[0]
        assert await app.audit_stream.lag() == 0
        assert "signoff_audit_stream_lag_events 0.0" in await render_metrics(app)
    events = collector.unique_in_order()
    assert [e["id"] for e in events] == [str(seq) for seq in range(1, head[0] + 1)]
    first = events[0]
    assert first["specversion"] == "1.0" and first["source"] == "signoff" and first["type"] == "dev.signoff.requested"
    assert first["data"]["prev_hash"] == GENESIS_HASH and first["time"].endswith("Z") and first["subject"] == "R-1"
    for before, event in itertools.pairwise(events):
        assert event["data"]["prev_hash"] == before["data"]["hash"]
    for event in events:  # data is the body its hash covers, plus the hash
        data = event["data"]
        assert chain_hash(data["prev_hash"], {k: v for k, v in data.items() if k != "hash"}) == data["hash"]
    assert {h.get("Authorization") for h in collector.headers} == {f"Bearer {TOKEN}"}
    assert all(h["Content-Type"].startswith("application/cloudevents+json") for h in collector.headers)


async def test_a_receiver_that_is_down_delays_the_stream_and_loses_nothing(
        sqlite_database_url: str, receiver: tuple[Receiver, str]) -> None:
    collector, url = receiver
    clock = MovableClock()
    async with running_app(_settings(sqlite_database_url, url), clock=clock) as app:
        assert app.audit_stream is not None
        await _activity(app, 1)
        collector.failing = True
        assert await app.audit_stream.run_once() == 0
        tried = len(collector.seen_ids)
        assert tried == 1  # it stops at the first failure: order is kept
        lag = await app.audit_stream.lag()
        assert lag > 0 and f"signoff_audit_stream_lag_events {float(lag)}" in await render_metrics(app)
        # Backing off: nothing is tried again before the pause is over, whatever the worker's pace.
        assert await app.audit_stream.run_once() == 0 and len(collector.seen_ids) == tried
        for _ in range(12):  # an hour of a collector answering 500: the pauses grow to five minutes
            clock.advance(minutes=5)
            assert await app.audit_stream.run_once() == 0
        position = await app.db.read(lambda uow: uow.stream.position("audit"))
        assert position.seq == 0 and position.failures == 13 and "500" in (position.last_error or "")
        await _activity(app, 2)  # the chain grows meanwhile
        collector.failing = False
        assert await app.audit_stream.run_once() == 0  # still paused
        clock.advance(minutes=5)
        sent = await app.audit_stream.run_once()
        head = await app.db.read(lambda uow: uow.timeline.head())
        assert head is not None and sent == head[0] and await app.audit_stream.lag() == 0
    assert [e["id"] for e in collector.accepted] == [str(seq) for seq in range(1, head[0] + 1)]


async def test_a_restart_goes_on_from_the_acknowledged_position(sqlite_database_url: str,
                                                                receiver: tuple[Receiver, str]) -> None:
    collector, url = receiver
    async with running_app(_settings(sqlite_database_url, url)) as app:
        assert app.audit_stream is not None
        await _activity(app, 1)
        first = await app.audit_stream.run_once()
    async with running_app(_settings(sqlite_database_url, url)) as app:
        assert app.audit_stream is not None
        await _activity(app, 1)
        second = await app.audit_stream.run_once()
        head = await app.db.read(lambda uow: uow.timeline.head())
    assert head is not None and first + second == head[0]
    assert [e["id"] for e in collector.accepted] == [str(seq) for seq in range(1, head[0] + 1)]


async def test_two_replicas_send_one_at_a_time(tmp_path: Path, receiver: tuple[Receiver, str]) -> None:
    collector, url = receiver
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with running_app(_settings(database_url, url)) as one, running_app(_settings(database_url, url)) as two:
        assert one.audit_stream is not None and two.audit_stream is not None
        await _activity(one, 2)
        collector.held = asyncio.Event()
        sending = asyncio.create_task(one.audit_stream.run_once())
        while not collector.seen_ids:
            await asyncio.sleep(0.01)
        # While the first replica holds the stream, the second sends nothing.
        assert await two.audit_stream.run_once() == 0
        collector.held.set()
        await sending
        collector.held = None
        assert await two.audit_stream.run_once() == 0
    assert [e["id"] for e in collector.accepted] == [str(seq) for seq in range(1, len(collector.accepted) + 1)]
    assert len(collector.seen_ids) == len(set(collector.seen_ids))
