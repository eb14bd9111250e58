"""Countersignatures are one per person, and a review closes once, under concurrent clicks (issue 20, item 2):
the review lives in the request's row, each change a compare-and-swap on its version, so racing writers
re-read and the loser is refused. On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from io import StringIO

from bot.chats.console import attach_console
from core.app.breakglass import BreakglassService
from core.domain.breakglass_review import ReviewStatus
from core.domain.events import EventType
from core.errors import SignoffError
from testkit.support import MovableClock, make_settings, running_app
from testkit.support.policy import team_policy

POLICY = team_policy(slack={"alice": "U0A", "bob": "U0B", "carol": "U0C", "dave": "U0D"},
                     groups={"dave": ("leads",)}, medium_quorum=2) + """
[breakglass]
who = ["sre"]
after = "1m"
reviewers = ["leads"]
review_quorum = 2
"""


async def test_racing_countersignatures_count_once_per_person(database_url: str) -> None:
    clock = MovableClock(datetime(2026, 3, 2, 3, 0, tzinfo=UTC))
    async with running_app(make_settings(database_url), policy=POLICY, clock=clock) as app:
        console = attach_console(app, StringIO(), person="alice")
        assert await console.line("request rollout restart deployment/api -n prod")
        clock.advance(minutes=2)
        assert await console.line('breakglass R-1 reason="api down"')
        await app.settle()
        glass = BreakglassService(store=app.db, policy=app.policy, clock=clock, signals=app.signals,
                                  approvals=app.service)
        carol = app.policy.people["carol"]

        results = await asyncio.gather(*(glass.countersign("R-1", by=carol) for _ in range(4)),
                                       return_exceptions=True)
        refused = [r for r in results if isinstance(r, SignoffError)]
        assert len(refused) == 3 and all("already countersigned" in r.message for r in refused), results
        request = await app.service.get("R-1")
        assert request.breakglass is not None and request.breakglass.countersigned_by == ("carol",)
        assert request.breakglass.status is ReviewStatus.open  # one of two countersignatures


async def test_a_review_closes_once(database_url: str) -> None:
    clock = MovableClock(datetime(2026, 3, 2, 3, 0, tzinfo=UTC))
    async with running_app(make_settings(database_url), policy=POLICY, clock=clock) as app:
        console = attach_console(app, StringIO(), person="alice")
        assert await console.line("request rollout restart deployment/api -n prod")
        clock.advance(minutes=2)
        assert await console.line('breakglass R-1 reason="api down"')
        await app.settle()
        glass = BreakglassService(store=app.db, policy=app.policy, clock=clock, signals=app.signals,
                                  approvals=app.service)
        carol, dave = app.policy.people["carol"], app.policy.people["dave"]
        results = await asyncio.gather(glass.countersign("R-1", by=carol), glass.countersign("R-1", by=dave),
                                       return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)], results
        request = await app.service.get("R-1")
        assert request.breakglass is not None and request.breakglass.status is ReviewStatus.countersigned
        assert sorted(request.breakglass.countersigned_by) == ["carol", "dave"]
        events = [e for e in await app.service.timeline("R-1") if e.type is EventType.countersigned]
        assert len(events) == 2 and sum("review closed" in e.title for e in events) == 1
