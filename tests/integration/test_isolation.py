"""One unit of work fails alone: an unexpected error in one execution or one delivery never cancels the others,
and an outage of one platform never holds back another's messages (issue: hardening, defects 3 and 4)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from io import StringIO

from bot.bootstrap import build_cluster
from bot.chats.console import attach_console
from core.chat.messages import MessageKind, NewMessage
from core.domain.approvals import Place
from core.domain.cluster import ClusterResult, TargetFacts
from core.domain.operations import Operation
from core.domain.policy import Person
from core.domain.verify import Progress
from core.ports import Cluster
from testkit.support import MovableClock, make_settings, running_app

CONSOLE = Place(platform="console", channel="console")


class BuggyTarget:
    """The real sandbox cluster, except that one target makes the adapter raise an error it does not translate.

    The other targets' dry runs wait until that error has been raised, so without isolation they are cancelled
    in the middle of their dry run.
    """

    def __init__(self, real: Cluster, broken: str) -> None:
        self._real = real
        self._broken = broken
        self.raised = asyncio.Event()

    async def check(self) -> str:
        return await self._real.check()

    async def inspect(self, op: Operation, *, fresh: bool = False) -> TargetFacts:
        return await self._real.inspect(op, fresh=fresh)

    async def apply(self, op: Operation, *, dry_run: bool, stamp: Mapping[str, str] | None = None) -> ClusterResult:
        if getattr(op, "name", None) == self._broken:
            self.raised.set()
            raise RuntimeError("adapter bug: an exception nobody translated")
        if dry_run:
            await self.raised.wait()
        return await self._real.apply(op, dry_run=dry_run)

    async def observe(self, op: Operation, since: ClusterResult, *, reasons: bool = False) -> Progress:
        return await self._real.observe(op, since, reasons=reasons)


async def test_an_unexpected_error_in_one_execution_does_not_cancel_the_others(database_url: str) -> None:
    settings = make_settings(database_url)
    closers: list[object] = []
    real, _sandbox = await build_cluster(settings, closers)  # type: ignore[arg-type]
    cluster = BuggyTarget(real, broken="web")
    try:
        async with running_app(settings, cluster=cluster) as app:
            alice, bob = Person(name="alice"), Person(name="bob")
            broken = await app.service.request("rollout restart deployment/web -n prod", by=alice, via="console",
                                               origin=CONSOLE)
            fine = await app.service.request("rollout restart deployment/api -n prod", by=alice, via="console",
                                             origin=CONSOLE)
            await app.service.sign(broken.id, by=bob, via="console")
            await app.service.sign(fine.id, by=bob, via="console")
            await app.execution.run_approved()
            assert (await app.service.get(fine.id)).status == "succeeded"
            failed = await app.service.get(broken.id)
            # The bug happened before the real call, so nothing changed and the request says so.
            assert failed.status == "failed"
            assert failed.outcome is not None and "nothing was changed" in (failed.outcome.reason or "")
    finally:
        for close in reversed(closers):
            result = close()  # type: ignore[operator]
            if asyncio.iscoroutine(result):
                await result


async def test_a_platform_without_a_gateway_does_not_hold_back_the_others(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        transcript = StringIO()
        attach_console(app, transcript)
        # 250 messages queued for a platform this process has no gateway for (Discord down or turned off) ...
        stuck = [NewMessage(platform="discord", channel="1", kind=MessageKind.channel, text=f"stuck {i}")
                 for i in range(250)]
        await app.db.write(lambda uow: uow.outbox.add(stuck))
        # ... must not stop the console's own message behind them.
        await app.db.write(lambda uow: uow.outbox.add(
            [NewMessage(platform="console", channel="console", kind=MessageKind.channel, text="still delivered")]))
        await app.dispatcher.run_once()
        await app.dispatcher.run_once()
        assert "still delivered" in transcript.getvalue()
