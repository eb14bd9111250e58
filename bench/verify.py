"""Verification benchmark (not a test): N deployments restarted at once, each new pod taking a fixed
start-up time in the sandbox; how long from execution to verified, and what it costs.

    python bench/verify.py [--deployments 200] [--startup 1.0] [--replicas 2]

The sandbox API server runs in its own process (so signoff's CPU is signoff's alone); signoff runs
its real background workers (execution, verification, outbox) on a temporary SQLite database.
Reported:
- time from execution (the API server accepted the restart) to verified, p50 and p99, against the
  floor: the sandbox's own rollout time, which is the pod start-up (new pods are created by the
  PATCH and turn Ready exactly `--startup` seconds later, completing the rollout);
- Kubernetes API calls per verified request, counted at the client (dry run, real call, reads), and
  those of the verification alone (after the real call: a watch of the deployment, a list and a watch
  of its pods; a poll's reads when a watch broke);
- signoff's CPU (process time / wall time) while the rollouts are under way.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.kubernetes.executor import KubernetesCluster
from adapters.kubernetes.sandbox import SandboxCluster
from bot.bootstrap import bootstrap
from bot.settings import Settings
from core.domain.approvals import RequestStatus
from core.domain.policy import Person, Policy

NAMESPACE = "bench"


def quiet() -> None:
    """Warnings only: an info line per call would measure the logger, not verification."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def serve(deployments: int, startup: float, replicas: int) -> None:
    """The sandbox process: seeded cluster plus the bench deployments, serving until stdin closes."""
    sandbox = SandboxCluster(seed=True, ready_delay=startup)
    sandbox.add_deployments(NAMESPACE, deployments, replicas=replicas)
    print(sandbox.start(), flush=True)
    sys.stdin.read()
    sandbox.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run(deployments: int, startup: float, replicas: int) -> dict[str, Any]:
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [sys.executable, __file__, "--serve", "--deployments", str(deployments), "--startup", str(startup),
         "--replicas", str(replicas)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdin is not None
    url = ""
    while not url.startswith("http"):
        url = process.stdout.readline().strip()
    calls: Counter[tuple[str, str]] = Counter()
    sequence: dict[str, list[str]] = {}  # deployment → the methods of its calls, in order ("WATCH" for a watch)
    counting = threading.Lock()
    try:
        cluster = KubernetesCluster.for_url(url, "sandbox-token")
        original = cluster.api_client.call_api

        def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            # /apis/apps/v1/namespaces/bench/deployments/app-0007[/scale] → app-0007
            path, _, query = url.partition("?")
            parts = path.split("/")
            name = next((parts[i + 1] for i, p in enumerate(parts[:-1]) if p in ("deployments", "pods")), "")
            params = dict(urllib.parse.parse_qsl(query))
            if not name:  # a list or a watch: whose, its selector says (fieldSelector name, labelSelector app)
                selector = params.get("fieldSelector") or params.get("labelSelector") or ""
                name = selector.partition("=")[2]
            kind = "WATCH" if params.get("watch") in ("true", "True", "1") else method
            with counting:
                calls[(name, method)] += 1
                sequence.setdefault(name, []).append(kind)
            return original(method, url, *args, **kwargs)

        with tempfile.TemporaryDirectory(prefix="signoff-bench-verify-") as tmp:
            settings = Settings(SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{tmp}/bench.db", SIGNOFF_CLUSTER="sandbox")
            async with bootstrap(settings, cluster=cluster, policy=Policy(), min_update_interval=1.0) as app:
                names = [f"app-{i:04d}" for i in range(deployments)]
                ids = []
                for index, name in enumerate(names):
                    request = await app.service.request(f"rollout restart deployment/{name} -n {NAMESPACE}",
                                                        by=Person(name=f"dev{index}"), via="console")
                    ids.append(request.id)
                cluster.api_client.call_api = counted  # type: ignore[method-assign]
                async with app.background():
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    for request_id in ids:
                        await app.service.sign(request_id, by=Person(name="reviewer"), via="console")
                    app.signals.execution.set()
                    waiting: tuple[float, float] | None = None
                    busy = {RequestStatus.pending.value, RequestStatus.approved.value, RequestStatus.executing.value}
                    while True:
                        statuses = await app.db.read(lambda uow: uow.requests.counts())
                        if waiting is None and not busy & {k for k, v in statuses.items() if v}:
                            # Every restart is accepted: from here on signoff only waits and looks.
                            waiting = (time.process_time(), time.perf_counter())
                        if sum(v for k, v in statuses.items() if RequestStatus(k).terminal) >= deployments:
                            break
                        await asyncio.sleep(0.05)
                    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                    assert waiting is not None
                    wait_cpu, wait_wall = time.process_time() - waiting[0], time.perf_counter() - waiting[1]
                durations, outcomes = [], Counter[str]()
                for request_id in ids:
                    request = await app.service.get(request_id)
                    outcomes[request.status.value] += 1
                    events = await app.service.timeline(request_id)
                    executed = next(e.at for e in events if e.type == "executed")
                    ended = next(e.at for e in events if e.type in ("verified", "failed"))
                    durations.append((ended - executed).total_seconds())
    finally:
        process.stdin.close()
        process.wait(timeout=30)
    per_request = [sum(n for (name, _), n in calls.items() if name == deployment) for deployment in names]
    reads = [calls[(deployment, "GET")] for deployment in names]

    def after_the_call(kinds: list[str]) -> list[str]:
        last_patch = max((i for i, k in enumerate(kinds) if k == "PATCH"), default=-1)
        return kinds[last_patch + 1:]

    verifying = [after_the_call(sequence.get(deployment, [])) for deployment in names]
    return {
        "deployments": deployments, "startup_s": startup, "replicas": replicas, "outcomes": dict(outcomes),
        "p50_s": statistics.median(durations), "p99_s": percentile(durations, 0.99), "floor_s": startup,
        "calls_per_request": statistics.mean(per_request), "reads_per_request": statistics.mean(reads),
        "max_calls": max(per_request), "verify_calls": statistics.mean(len(v) for v in verifying),
        "verify_max": max(len(v) for v in verifying),
        "verify_watches": statistics.mean(sum(k == "WATCH" for k in v) for v in verifying),
        "cpu_s": cpu, "wall_s": wall, "cpu_share": cpu / wall,
        "wait_cpu_s": wait_cpu, "wait_wall_s": wait_wall, "wait_cpu_share": wait_cpu / max(wait_wall, 1e-9),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployments", type=int, default=200)
    parser.add_argument("--startup", type=float, default=1.0)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet()
    if args.serve:
        serve(args.deployments, args.startup, args.replicas)
        return
    result = asyncio.run(run(args.deployments, args.startup, args.replicas))
    print(f"{result['deployments']} deployments × {result['replicas']} replicas restarted at once, "
          f"pod start-up {result['startup_s']:.1f} s; outcomes {result['outcomes']}")
    print(f"execution → verified: p50 {result['p50_s']:.2f} s ({result['p50_s'] / result['floor_s']:.2f}× floor), "
          f"p99 {result['p99_s']:.2f} s ({result['p99_s'] / result['floor_s']:.2f}× floor); "
          f"floor (the sandbox's own rollout) {result['floor_s']:.2f} s")
    print(f"{'':24}{'measured':>12}{'target':>10}")
    print(f"{'verification / floor':24}{result['p50_s'] / result['floor_s']:>11.2f}×{'≤ 1.05×':>10}  (p50)")
    print(f"{'API calls / verification':24}{result['verify_calls']:>12.2f}{'≤ 3':>10}  "
          f"(max {result['verify_max']}; watches {result['verify_watches']:.2f})")
    print(f"Kubernetes API calls per verified request: {result['calls_per_request']:.2f} "
          f"(of which reads {result['reads_per_request']:.2f}; max {result['max_calls']}) "
          "— dry run + real call + verification reads")
    print(f"signoff CPU from the first signature to the last verdict: {result['cpu_s']:.2f} s over "
          f"{result['wall_s']:.2f} s wall ({100 * result['cpu_share']:.0f}% of one core); during the wait alone "
          f"(every restart accepted, rollouts under way): {result['wait_cpu_s']:.2f} s over "
          f"{result['wait_wall_s']:.2f} s ({100 * result['wait_cpu_share']:.0f}%)")


if __name__ == "__main__":
    main()
