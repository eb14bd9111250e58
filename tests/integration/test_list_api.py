"""The list endpoints over real HTTP on SQLite and PostgreSQL: filters, keyset pages, the audit chain."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.bootstrap import App
from bot.http import build_http_app
from core.domain.events import GENESIS_HASH, chain_hash
from core.domain.listing import encode_cursor
from testkit.support import MovableClock, make_settings, running_app

TOKEN = "list-api-token-0123456789"
ACTIONS = ["rollout restart deployment/api -n prod", "scale deployment/web --replicas=3 -n staging",
           "cordon node-1", "rollout restart deployment/web -n staging", "delete pod web-7d9f -n prod"]


@pytest.fixture
async def served(database_url: str) -> AsyncIterator[tuple[App, MovableClock, str]]:
    clock = MovableClock()
    async with running_app(make_settings(database_url, SIGNOFF_API_TOKEN=TOKEN), clock=clock) as app:
        assert app.sandbox is not None  # the pod ACTIONS deletes: a missing target is refused at request time
        app.sandbox.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-7d9f", "namespace": "prod"},
                         "spec": {"containers": [{"name": "web", "image": "ghcr.io/acme/web:2.3.1"}]}})
        server = TestServer(build_http_app(app))
        await server.start_server()
        try:
            yield app, clock, str(server.make_url("")).rstrip("/")
        finally:
            await server.close()


async def call(base: str, method: str, path: str, body: Any = None, token: str = TOKEN) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(
        method, base + path, data=json.dumps(body) if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.json()


async def create(base: str, action: str, by: str) -> str:
    status, body = await call(base, "POST", "/api/v1/requests", {"action": action, "requested_by": by})
    assert status == 201, body
    return str(body["id"])


async def test_requests_page_newest_first_with_filters(served: tuple[App, MovableClock, str]) -> None:
    app, clock, base = served
    made = []
    for number, action in enumerate(ACTIONS * 2):
        clock.advance(minutes=1)
        made.append(await create(base, action, "alice" if number % 2 == 0 else "bob"))
    cutoff = clock.current
    await app.service.cancel(made[-1], by=app.policy.person("api", "bob"), via="api")  # bob asked for it

    status, page = await call(base, "GET", "/api/v1/requests?limit=4")
    assert status == 200
    assert [item["id"] for item in page["items"]] == made[::-1][:4]
    assert page["items"][0]["status"] == "cancelled" and page["items"][0]["command"]
    seen = [item["id"] for item in page["items"]]
    while page["next_cursor"] is not None:
        # A request made between two pages shows on no later page and shifts nothing.
        await create(base, ACTIONS[0], "carol")
        status, page = await call(base, "GET", f"/api/v1/requests?limit=4&cursor={page['next_cursor']}")
        assert status == 200
        seen += [item["id"] for item in page["items"]]
    assert seen == made[::-1]

    status, mine = await call(base, "GET", "/api/v1/requests?requester=bob&status=pending")
    assert status == 200
    assert [item["id"] for item in mine["items"]] == [rid for i, rid in enumerate(made[:-1]) if i % 2 == 1][::-1]
    status, cancelled = await call(base, "GET", "/api/v1/requests?status=cancelled,expired")
    assert [item["id"] for item in cancelled["items"]] == [made[-1]]
    since = cutoff.isoformat()
    status, recent = await call(base, "GET", f"/api/v1/requests?since={since.replace('+', '%2B')}&status=pending")
    assert status == 200
    assert {item["requested_by"] for item in recent["items"]} == {"carol"}


async def test_bad_filters_are_refused_with_what_works(served: tuple[App, MovableClock, str]) -> None:
    _, _, base = served
    for path, word in [("requests?status=done", "pending"), ("requests?limit=0", "1 to"),
                       ("requests?limit=501", "1 to 500"), ("requests?limit=abc", "1 to"),
                       ("requests?since=yesterday", "RFC 3339"), ("requests?cursor=not-a-cursor", "next_cursor"),
                       ("requests?stauts=pending", "`stauts` is not a parameter"),
                       ("incidents?cursor=" + encode_cursor(5), "next_cursor"),
                       ("playbooks?since=2026-01-01", "`since`"),
                       ("audit?after=-1", "sequence number"), ("audit?limit=5001", "1 to 5000")]:
        status, body = await call(base, "GET", f"/api/v1/{path}")
        assert status == 400, path
        assert word in body["message"], (path, body)
        assert body["error"] in {"invalid_filter", "invalid_cursor"}
    status, body = await call(base, "GET", "/api/v1/requests", token="wrong-token-0123456789")
    assert status == 401


async def test_incidents_and_playbooks_pages(served: tuple[App, MovableClock, str]) -> None:
    _, clock, base = served
    opened = []
    for number in range(5):
        clock.advance(minutes=1)
        status, body = await call(base, "POST", "/api/v1/alerts", {"version": "4", "alerts": [{
            "status": "firing", "fingerprint": f"f{number}", "startsAt": clock.current.isoformat(),
            "labels": {"alertname": f"Alert{number}", "namespace": "prod", "deployment": f"web{number}"},
        }]})
        assert status == 200, body
        opened.append(body["alerts"][0]["incident_id"])
    status, page = await call(base, "GET", "/api/v1/incidents?limit=2")
    assert status == 200
    ids = [item["id"] for item in page["items"]]
    while page["next_cursor"]:
        status, page = await call(base, "GET", f"/api/v1/incidents?limit=2&cursor={page['next_cursor']}")
        ids += [item["id"] for item in page["items"]]
    assert ids == opened[::-1]
    status, none = await call(base, "GET", "/api/v1/incidents?status=resolved")
    assert status == 200 and none == {"items": [], "next_cursor": None}
    status, playbooks = await call(base, "GET", "/api/v1/playbooks")
    assert status == 200 and playbooks["items"] == [] and playbooks["next_cursor"] is None


async def test_audit_returns_the_chain_in_order_and_links(served: tuple[App, MovableClock, str]) -> None:
    _, _, base = served
    for action in ACTIONS:
        await create(base, action, "alice")
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        status, page = await call(base, "GET", f"/api/v1/audit?after={after}&limit=2")
        assert status == 200
        events += page["items"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len(events) >= len(ACTIONS)
    assert events[0]["prev_hash"] == GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(events))
    # Each item is the very body its hash covers: anyone can re-compute the chain from the API alone.
    for event in events:
        body = {key: value for key, value in event.items() if key != "hash"}
        assert chain_hash(event["prev_hash"], body) == event["hash"], event["seq"]
    assert events[0]["type"] == "requested" and events[0]["at"].endswith("Z")
