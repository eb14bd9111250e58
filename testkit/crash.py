"""The crash test: SIGKILL `signoff run` at random moments of many request lifecycles, restart it,
and check that no acknowledged signature is lost, nothing executes twice or unsigned, and every
approved request's outcome reaches its thread (`interrupted` where the outcome is unknown).

Used at a small size by tests/integration/test_crash.py and at full size by bench/crash.py.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from testkit.harness import SIGNERS, Deployment, deployment, people_for

TERMINAL = {"succeeded", "failed", "blocked", "interrupted", "expired"}


@dataclass
class CrashReport:
    lifecycles: int
    kills: int = 0
    acked_clicks: set[tuple[str, str]] = field(default_factory=set)
    request_ids: list[str] = field(default_factory=list)
    lost_signatures: list[tuple[str, str]] = field(default_factory=list)
    double_executions: list[str] = field(default_factory=list)
    unsigned_executions: list[str] = field(default_factory=list)
    unreported: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not (self.lost_signatures or self.double_executions or self.unsigned_executions or self.unreported)

    def describe(self) -> str:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return (f"{self.lifecycles} lifecycles, {self.kills} SIGKILLs in {self.seconds:.0f} s: "
                f"{len(self.acked_clicks)} acknowledged signatures, {len(self.lost_signatures)} lost; "
                f"{len(self.double_executions)} double executions; {len(self.unsigned_executions)} unsigned "
                f"executions; {len(self.unreported)} outcomes not reported; outcomes: {outcomes}")


async def run_crash_test(workdir: Path, database_url: str, *, lifecycles: int, seed: int = 7,
                         mean_kill_interval: float = 1.5, concurrency: int = 4, max_think: float = 1.0,
                         settle_timeout: float = 120.0) -> CrashReport:
    report = CrashReport(lifecycles=lifecycles)
    started = time.monotonic()
    with deployment(workdir, database_url, replicas=1, deployments=lifecycles) as world:
        await world.start()
        process = world.replicas[0]
        rng = random.Random(seed)
        done = asyncio.Event()

        async def killer() -> None:
            while not done.is_set():
                try:
                    await asyncio.wait_for(done.wait(), timeout=rng.expovariate(1 / mean_kill_interval))
                except TimeoutError:
                    process.kill()
                    report.kills += 1
                    process.start()
                    await process.wait_healthy()

        async def lifecycle(session: aiohttp.ClientSession, index: int) -> None:
            target = f"app-{index:04d}"
            think = random.Random(seed * 1000 + index)  # people take a moment between steps
            request_id = None
            while request_id is None:
                request_id = await world.create_request(session, process, target)
                if request_id is None:
                    await asyncio.sleep(0.2)  # the assistant retries; an unanswered try may have been stored
            report.request_ids.append(request_id)
            for user in SIGNERS:
                await asyncio.sleep(think.uniform(0.0, max_think))
                # A person clicks until Slack shows the click went through.
                while not await world.click(session, process, user, request_id):
                    await asyncio.sleep(0.2)
                report.acked_clicks.add((request_id, people_for(user)))

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            kills = asyncio.ensure_future(killer())
            try:
                gate = asyncio.Semaphore(concurrency)

                async def gated(index: int) -> None:
                    async with gate:
                        await lifecycle(session, index)

                await asyncio.gather(*(gated(i) for i in range(lifecycles)))
            finally:
                done.set()
                await kills
        await _settle(world, report, settle_timeout)
        await _check(world, report)
    report.seconds = time.monotonic() - started
    return report


async def _settle(world: Deployment, report: CrashReport, timeout: float) -> None:
    """Let the last process finish: every request decided and reported (or time out and report that)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = await world.database_view()
        statuses = [view["status"].get(r) for r in report.request_ids]
        if all(s in TERMINAL for s in statuses) and all(world.outcome_messages(r) for r in report.request_ids):
            return
        await asyncio.sleep(0.25)


async def _check(world: Deployment, report: CrashReport) -> None:
    view = await world.database_view()
    writes = world.sandbox.real_writes()
    report.lost_signatures = sorted(click for click in report.acked_clicks if click not in view["signatures"])
    for request_id, claims in view["claims"].items():
        signers = {person for rid, person in view["signatures"] if rid == request_id}
        if claims > 1:
            report.double_executions.append(request_id)
        if len(signers) < 2:
            report.unsigned_executions.append(request_id)
    for path, count in writes.items():
        if count > 1:
            report.double_executions.append(path)
    for request_id in report.request_ids:
        status = view["status"].get(request_id)
        report.outcomes[str(status)] = report.outcomes.get(str(status), 0) + 1
        if status not in TERMINAL or not world.outcome_messages(request_id):
            report.unreported.append(f"{request_id} ({status})")
