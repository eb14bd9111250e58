"""The execution lease (issue: hardening, defect 13): renewed while a slow call runs, so the sweep never
declares a request interrupted while its write still goes out; and re-checked between the dry run and the real
call, so a request found interrupted meanwhile is never written to the cluster."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import timedelta

from bot.bootstrap import build_cluster
from core.domain.approvals import Place, RequestStatus
from core.domain.cluster import ClusterResult, TargetFacts
from core.domain.events import EventType
from core.domain.operations import Operation
from core.domain.policy import Person
from core.ports import Cluster
from testkit.support import MovableClock, make_settings, running_app

CONSOLE = Place(platform="console", channel="console")
ALICE, BOB = Person(name="alice"), Person(name="bob")


async def test_a_slow_call_keeps_its_lease(database_url: str) -> None:
    async with running_app(make_settings(database_url, SIGNOFF_EXECUTION_LEASE=2)) as app:
        assert app.sandbox is not None
        request = await app.service.request("rollout restart deployment/api -n prod", by=ALICE, via="console",
                                            origin=CONSOLE)
        await app.service.sign(request.id, by=BOB, via="console")
        # The dry run and the real call each take longer than the whole lease.
        app.sandbox.inject("PATCH", r"/deployments/api$", status=None, delay=2.5, times=2)

        async def sweeping() -> None:
            while True:
                await app.maintenance.sweep()
                await asyncio.sleep(0.2)

        sweeper = asyncio.create_task(sweeping())
        try:
            await app.execution.run_approved()
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        done = await app.service.get(request.id)
        assert done.status is RequestStatus.succeeded
        types = [e.type for e in await app.service.timeline(request.id)]
        assert EventType.interrupted not in types


class SweptDuringDryRun:
    """The real sandbox cluster; during the dry run the clock jumps past the lease and the sweep runs, as if
    this worker had stalled: the request is interrupted while its dry run is in flight."""

    def __init__(self, real: Cluster, clock: MovableClock) -> None:
        self._real = real
        self._clock = clock
        self.sweep: object = None
        self.real_calls = 0

    async def check(self) -> str:
        return await self._real.check()

    async def inspect(self, op: Operation, *, fresh: bool = False) -> TargetFacts:
        return await self._real.inspect(op, fresh=fresh)

    async def apply(self, op: Operation, *, dry_run: bool, stamp: Mapping[str, str] | None = None) -> ClusterResult:
        if dry_run:
            result = await self._real.apply(op, dry_run=True)
            self._clock.advance(minutes=10)
            await self.sweep()  # type: ignore[operator]
            return result
        self.real_calls += 1
        return await self._real.apply(op, dry_run=False)


async def test_a_request_interrupted_during_its_dry_run_is_never_written(database_url: str) -> None:
    clock = MovableClock()
    settings = make_settings(database_url)
    closers: list[object] = []
    real, _sandbox = await build_cluster(settings, closers)  # type: ignore[arg-type]
    cluster = SweptDuringDryRun(real, clock)
    try:
        async with running_app(settings, cluster=cluster, clock=clock) as app:
            cluster.sweep = app.maintenance.sweep
            request = await app.service.request("rollout restart deployment/api -n prod", by=ALICE,
                                                via="console", origin=CONSOLE)
            await app.service.sign(request.id, by=BOB, via="console")
            await app.execution.run_approved()
            assert cluster.real_calls == 0
            done = await app.service.get(request.id)
            assert done.status is RequestStatus.interrupted
            assert clock.now() - done.created_at >= timedelta(minutes=10)
    finally:
        for close in reversed(closers):
            result = close()  # type: ignore[operator]
            if asyncio.iscoroutine(result):
                await result
