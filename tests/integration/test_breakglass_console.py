"""Break glass in the console (issue 20, item 2): refused with a sentence while too early, without a reason,
for someone not allowed; then the request runs on one signature, the card and timeline say 🚨 break glass,
a lead countersigns, `breakglass` alone lists the open reviews; a second break glass while the first review
is open is refused naming it; an overdue review is reminded once in the thread."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO

import aiohttp
from aiohttp.test_utils import TestServer

from bot.chats.console import attach_console
from bot.http import build_http_app
from core.domain.approvals import RequestStatus
from core.domain.breakglass_review import ReviewStatus
from testkit.support import MovableClock, make_settings, running_app
from testkit.support.policy import team_policy

START = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
GLASS = """
[breakglass]
who = ["sre"]
after = "5m"
review_within = "24h"
reviewers = ["leads"]
"""
POLICY = team_policy(slack={"alice": "U0A", "bob": "U0B", "carol": "U0C", "mallory": "U0M"},
                     medium_quorum=2) + GLASS


async def test_break_glass_in_the_console(sqlite_database_url: str) -> None:
    clock = MovableClock(START)
    async with running_app(make_settings(sqlite_database_url), policy=POLICY, clock=clock) as app:
        out = StringIO()
        console = attach_console(app, out, person="alice")

        def said() -> str:
            text = out.getvalue()
            out.seek(0)
            out.truncate()
            return text

        assert await console.line("request rollout restart deployment/api -n prod")
        await app.settle()
        said()
        assert await console.line('breakglass R-1 reason="checkout down, nobody answers"')
        assert "becomes possible after 5m, at 03:05:00 UTC" in said()
        clock.advance(minutes=6)
        assert await console.line("breakglass R-1")
        assert "needs a reason" in said()
        assert await console.line("as mallory")
        assert await console.line('breakglass R-1 reason="just because"')
        assert "Only sre may break glass" in said()
        assert (await app.service.get("R-1")).status is RequestStatus.pending

        assert await console.line("as alice")
        assert await console.line('breakglass R-1 reason="checkout down, nobody answers"')
        await app.settle()
        transcript = said()
        assert "You broke the glass on R-1" in transcript
        assert "🚨 break glass by alice: checkout down, nobody answers" in transcript
        request = await app.service.get("R-1")
        assert request.status is RequestStatus.succeeded, request.status
        assert request.breakglass is not None and request.breakglass.status is ReviewStatus.open
        events = [e.title for e in await app.service.timeline("R-1")]
        assert "🚨 break glass by alice: checkout down, nobody answers" in events

        assert await console.line("breakglass")
        assert "1 open break glass review(s):" in said()
        # A second break glass while the first review is open: refused, naming it.
        assert await console.line("request rollout restart deployment/web -n prod")
        await app.settle()
        clock.advance(minutes=6)
        said()
        assert await console.line('breakglass R-2 reason="again"')
        assert "Your break glass on R-1 awaits review" in said()
        assert (await app.service.get("R-2")).status is RequestStatus.pending

        assert await console.line("countersign R-1")  # alice broke it: not a reviewer
        assert "Only members of leads review" in said()
        assert await console.line("as carol")
        assert await console.line("countersign R-1")
        await app.settle()
        assert "the review is closed" in said()
        request = await app.service.get("R-1")
        assert request.breakglass is not None and request.breakglass.countersigned_by == ("carol",)
        assert await console.line("breakglass")
        assert "No break glass reviews are open." in said()


async def test_no_breakglass_section_refuses(sqlite_database_url: str) -> None:
    clock = MovableClock(START)
    policy = team_policy(slack={"alice": "U0A", "bob": "U0B"}, medium_quorum=1)
    async with running_app(make_settings(sqlite_database_url), policy=policy, clock=clock) as app:
        out = StringIO()
        console = attach_console(app, out, person="alice")
        assert await console.line("request rollout restart deployment/api -n prod")
        clock.advance(hours=1)
        assert await console.line('breakglass R-1 reason="x"')
        assert "no [breakglass] section" in out.getvalue()


async def test_overdue_review_is_reminded_once(sqlite_database_url: str) -> None:
    clock = MovableClock(START)
    async with running_app(make_settings(sqlite_database_url), policy=POLICY, clock=clock) as app:
        out = StringIO()
        console = attach_console(app, out, person="bob")
        assert await console.line("request rollout restart deployment/api -n prod")
        clock.advance(minutes=10)
        assert await console.line('breakglass R-1 reason="db on fire"')
        await app.settle()
        clock.advance(hours=25)
        await app.maintenance.sweep()
        await app.maintenance.sweep()
        await app.settle()
        assert out.getvalue().count("is overdue for review") == 1
        request = await app.service.get("R-1")
        assert request.breakglass is not None and request.breakglass.status is ReviewStatus.overdue
        titles = [e.title for e in await app.service.timeline("R-1")]
        assert sum(t.startswith("break glass review overdue") for t in titles) == 1


async def test_the_request_json_carries_the_break_glass(sqlite_database_url: str) -> None:
    token = "glass-api-token-0123456789"
    clock = MovableClock(START)
    settings = make_settings(sqlite_database_url, SIGNOFF_API_TOKEN=token)
    async with running_app(settings, policy=POLICY, clock=clock) as app:
        server = TestServer(build_http_app(app))
        await server.start_server()
        headers = {"Authorization": f"Bearer {token}"}

        async def get(path: str) -> dict[str, object]:
            async with aiohttp.ClientSession() as session, session.get(server.make_url(path),
                                                                       headers=headers) as response:
                assert response.status == 200
                return dict(json.loads(await response.text()))
        try:
            console = attach_console(app, StringIO(), person="alice")
            assert await console.line("request rollout restart deployment/api -n prod")
            assert (await get("/api/v1/requests/R-1"))["breakglass"] is None
            clock.advance(minutes=6)
            assert await console.line('breakglass R-1 reason="db on fire"')
            assert await console.line("as carol")
            assert await console.line('dispute R-1 reason="bob was awake"')
            await app.settle()
            glass = (await get("/api/v1/requests/R-1"))["breakglass"]
            assert isinstance(glass, dict)
            assert {k: glass[k] for k in ("by", "reason", "countersigned_by", "disputed_by", "status")} == {
                "by": "alice", "reason": "db on fire", "countersigned_by": [], "disputed_by": ["carol"],
                "status": "disputed"}
            assert glass["at"].startswith("2026-03-02T03:06") and glass["review_due"].startswith("2026-03-03T03:06")
            assert glass["disputes"][0]["reason"] == "bob was awake"
        finally:
            await server.close()


async def test_the_web_view_lists_open_reviews(sqlite_database_url: str) -> None:
    token = "glass-web-token-0123456789"
    clock = MovableClock(START)
    async with running_app(make_settings(sqlite_database_url, SIGNOFF_API_TOKEN=token), policy=POLICY,
                           clock=clock) as app:
        server = TestServer(build_http_app(app))
        await server.start_server()

        async def page(path: str) -> str:
            async with aiohttp.ClientSession() as session, session.get(
                    server.make_url(path), headers={"Authorization": f"Bearer {token}"}) as response:
                assert response.status == 200
                return await response.text()
        try:
            assert "No break glass reviews are open" in await page("/ui/breakglass")
            console = attach_console(app, StringIO(), person="alice")
            assert await console.line("request rollout restart deployment/api -n prod")
            clock.advance(minutes=6)
            assert await console.line('breakglass R-1 reason="db <b>on</b> fire"')
            await app.settle()
            listed = await page("/ui/breakglass")
            assert 'href="requests/R-1"' in listed and "db &lt;b&gt;on&lt;/b&gt; fire" in listed
            assert "🚨 Break glass" in await page("/ui/requests/R-1")
            assert await console.line("as carol")
            assert await console.line("countersign R-1")
            assert "No break glass reviews are open" in await page("/ui/breakglass")
        finally:
            await server.close()
