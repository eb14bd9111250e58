"""Retention (issue: hardening, defect 15): delivered outbox rows and other bookkeeping are pruned after
`[retention] keep` (default 30 days); timeline events never are; in-memory maps stay bounded."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import sqlalchemy as sa

from bot.chats.console import attach_console
from core.chat.messages import MessageKind, NewMessage
from core.domain.approvals import Place
from core.domain.policy import Person, Policy, parse_duration
from testkit.support import MovableClock, make_settings, running_app
from testkit.support.app import hooked_app

CONSOLE = Place(platform="console", channel="console")


async def _count(app: object, table: str, where: str = "1=1") -> int:
    return int(await app.db.read(  # type: ignore[attr-defined]
        lambda uow: uow.connection.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one()))


async def test_old_bookkeeping_is_pruned_and_the_timeline_kept(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), policy="[retention]\nkeep = \"7d\"\n", clock=clock) as app:
        attach_console(app, StringIO())
        request = await app.service.request("rollout restart deployment/api -n prod", by=Person(name="alice"),
                                            via="console", origin=CONSOLE)
        await app.service.sign(request.id, by=Person(name="bob"), via="console")
        await app.settle()
        delivered = await _count(app, "outbox", "status = 'delivered'")
        events = await _count(app, "timeline")
        assert delivered > 0 and await _count(app, "rate_events") > 0

        clock.advance(days=6)  # younger than `keep`: nothing goes
        await app.db.write(lambda uow: uow.outbox.add(
            [NewMessage(platform="console", channel="console", kind=MessageKind.channel, text="recent")]))
        await app.settle()
        first = await app.maintenance.prune()
        assert first["outbox"] == 0 and first["rate_events"] > 0  # rate counters matter for a minute only
        assert await _count(app, "outbox", "status = 'delivered'") == delivered + 1

        clock.advance(days=2)  # the first messages are now 8 days old, the last one 2 days
        pruned = await app.maintenance.prune()
        assert pruned["outbox"] == delivered
        assert await _count(app, "outbox") == 1
        assert await _count(app, "rate_events") == 0
        assert await _count(app, "timeline") == events  # never pruned
        assert (await app.service.get(request.id)).status == "succeeded"


async def test_the_sweep_prunes_now_and_then(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        attach_console(app, StringIO())
        await app.db.write(lambda uow: uow.outbox.add(
            [NewMessage(platform="console", channel="console", kind=MessageKind.channel, text="old")]))
        await app.settle()
        clock.advance(days=31)
        await app.maintenance.sweep()
        assert await _count(app, "outbox") == 0


async def test_the_dispatchers_pacing_map_stays_bounded(database_url: str) -> None:
    clock = MovableClock()
    # Paced card updates (one per card per second), as in production.
    async with hooked_app(make_settings(database_url), policy=Policy(), clock=clock, min_update_interval=1.0) as app:
        attach_console(app, StringIO())
        assert app.sandbox is not None  # ten targets that exist: a missing one is refused at request time
        names = app.sandbox.add_deployments("prod", 10, prefix="api")
        for name in names:
            request = await app.service.request(f"rollout restart deployment/{name} -n prod",
                                                by=Person(name="alice"), via="console", origin=CONSOLE)
            await app.service.reject(request.id, by=Person(name="bob"), via="console")
        await app.settle()
        assert app.dispatcher.pacing_entries > 0  # card updates went out
        clock.advance(minutes=5)
        await app.dispatcher.run_once()
        assert app.dispatcher.pacing_entries == 0


def test_durations_take_days() -> None:
    assert parse_duration("30d") == timedelta(days=30)
