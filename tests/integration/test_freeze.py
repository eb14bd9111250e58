"""Change freezes through the HTTP API and Slack (issue 20, item 3): a `refuse` freeze refuses at once with
a 422 `change_freeze` (nothing stored), a `raise` freeze raises the risk one level, names itself on the card
and is snapshotted onto the request's JSON; a critical request under `raise` is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.chats.console import attach_console
from bot.http import build_http_app
from core.domain.policy import Risk
from testkit.support import MovableClock, make_settings, running_app
from testkit.support.policy import team_policy
from testkit.support.slack import ALICE, BOB, CAROL, card_text, slack_world

TOKEN = "freeze-api-token-0123456789"
START = datetime(2026, 11, 27, tzinfo=UTC)
FREEZES = """
[[freeze]]
name = "Black Friday"
start = "2026-11-27T00:00:00Z"
end = "2026-11-30T08:00:00Z"
effect = "raise"

[[freeze]]
name = "Payments migration"
start = 2026-11-28T00:00:00Z
end = 2026-11-28T06:00:00Z
effect = "refuse"
"""
POLICY = team_policy(slack={"alice": ALICE, "bob": BOB, "carol": CAROL}) + FREEZES


async def call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(
        method, base + path, data=json.dumps(body) if body is not None else None,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.json()


async def test_freezes_through_the_api(database_url: str) -> None:
    clock = MovableClock(START - timedelta(hours=1))
    settings = make_settings(database_url, SIGNOFF_API_TOKEN=TOKEN)
    async with running_app(settings, policy=POLICY, clock=clock) as app:
        server = TestServer(build_http_app(app))
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        try:
            restart = {"action": "rollout restart deployment/api -n prod", "requested_by": "alice"}
            status, before = await call(base, "POST", "/api/v1/requests", restart)
            assert status == 201 and before["risk"] == "medium" and before["freeze"] is None

            clock.advance(hours=2)  # Black Friday: one level higher, and the request carries the freeze
            status, raised = await call(base, "POST", "/api/v1/requests", restart)
            assert status == 201, raised
            assert raised["risk"] == "high" and raised["quorum"] == 2
            assert raised["freeze"]["name"] == "Black Friday" and raised["freeze"]["effect"] == "raise"
            assert raised["freeze"]["end"].startswith("2026-11-30T08:00:00")
            status, critical = await call(base, "POST", "/api/v1/requests",
                                          {**restart, "risk": "critical"})
            assert status == 422 and critical["error"] == "change_freeze", critical
            assert "Black Friday" in critical["message"]
            assert "break glass" in critical["message"]

            clock.advance(days=1)  # the payments migration refuses everything, though Black Friday raises
            status, refused = await call(base, "POST", "/api/v1/requests", restart)
            assert status == 422 and refused["error"] == "change_freeze", refused
            message = refused["message"]
            assert "Payments migration" in message and "2026-11-28 06:00 UTC" in message
            assert "break glass remains" in message
            status, listed = await call(base, "GET", "/api/v1/requests")
            assert status == 200 and [item["id"] for item in listed["items"]] == [raised["id"], before["id"]]

            clock.advance(days=3)  # all over
            status, after = await call(base, "POST", "/api/v1/requests", restart)
            assert status == 201 and after["risk"] == "medium" and after["freeze"] is None
            stored = await app.service.get(raised["id"])
            assert stored.freeze is not None and stored.freeze.name == "Black Friday"
            assert stored.risk is Risk.high
        finally:
            await server.close()


async def test_freezes_in_slack(sqlite_database_url: str) -> None:
    clock = MovableClock(START + timedelta(hours=1))
    async with slack_world(sqlite_database_url, policy=POLICY, clock=clock) as world:
        assert await world.command(ALICE, "request rollout restart deployment/api -n prod") == 200
        await world.settle()
        card = card_text(world.card("R-1"))
        assert "Black Friday" in card and "raised one level" in card
        request = await world.app.service.get("R-1")
        assert request.risk is Risk.high and request.freeze is not None

        clock.advance(days=1)
        assert await world.command(ALICE, "request rollout restart deployment/api -n prod") == 200
        await world.settle()
        said = "\n".join(world.private_texts(ALICE))
        assert "Payments migration" in said and "break glass remains" in said
        assert len(await world.app.service.pending()) == 1  # nothing stored


async def test_freezes_in_the_console(sqlite_database_url: str) -> None:
    clock = MovableClock(START + timedelta(days=1, hours=1))  # the payments migration refuses
    async with running_app(make_settings(sqlite_database_url), policy=POLICY, clock=clock) as app:
        transcript = StringIO()
        console = attach_console(app, transcript)
        assert await console.line("request rollout restart deployment/api -n prod")
        said = transcript.getvalue()
        assert "Payments migration" in said and "2026-11-28 06:00 UTC" in said and "break glass remains" in said
        assert await app.service.pending() == []
        clock.advance(hours=6)  # only Black Friday now: raised, and the card says why
        assert await console.line("request rollout restart deployment/api -n prod")
        await app.settle()
        assert "raised one level by the change freeze “Black Friday”" in transcript.getvalue()
        (request,) = await app.service.pending()
        assert request.risk is Risk.high and request.freeze is not None
