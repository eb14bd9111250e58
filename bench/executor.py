"""Executor micro-benchmark (not a test): the CPU signoff's Kubernetes adapter spends per operation.

    python bench/executor.py [--operations 200] [--replicas 2]

The sandbox API server runs in its own process (so the CPU measured is the executor's alone, with
the official client's serialization and deserialization). For each of N deployments, the executor
does what one approved restart costs it end to end: `inspect` (the blast radius at request time;
a restart's floor reads no facts, so execution does not inspect again), the dry run, the real call,
and `observe` until the rollout is done. Reported: process CPU per operation (time.process_time, all
threads: the client runs in worker threads), API calls per operation, and wall time.

Figures on the shared 2-core development machine (200 operations, 2 replicas, 6 API calls per
operation in both; the same script run against each tree, interleaved, four times; the machine
was shared, so single runs vary by ±0.5 ms):
- before (issue 17: the facts and the writes' answers as the client's typed models, verification
  as raw JSON): 6.5, 5.8, 6.1, 6.0 ms CPU per operation (median 6.05 ms);
- after (every object read once per look and every answer parsed once, as raw JSON; no model is
  built): 4.7, 4.4, 4.4, 5.3 ms CPU per operation (median 4.55 ms), a quarter less.
What is left is the client's HTTP machinery (urllib3, http.client, argument validation), about
0.7 ms per call: fewer calls, not faster parsing, is the next lever.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.kubernetes.executor import KubernetesCluster
from adapters.kubernetes.sandbox import SandboxCluster
from core.domain.operations import parse_operation

NAMESPACE = "bench"


def quiet() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def serve(operations: int, replicas: int) -> None:
    """The sandbox process: the bench deployments, Ready at once, serving until stdin closes."""
    sandbox = SandboxCluster(seed=True, ready_delay=0.0)
    sandbox.add_deployments(NAMESPACE, operations, replicas=replicas)
    print(sandbox.start(), flush=True)
    sys.stdin.read()
    sandbox.stop()


async def one(cluster: KubernetesCluster, name: str) -> None:
    op = parse_operation(f"rollout restart deployment/{name} -n {NAMESPACE}")
    await cluster.inspect(op)
    await cluster.apply(op, dry_run=True)
    result = await cluster.apply(op, dry_run=False)
    for _ in range(100):
        if (await cluster.observe(op, result)).done:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name}: the rollout never completed")


async def run(operations: int, replicas: int) -> dict[str, Any]:
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [sys.executable, __file__, "--serve", "--operations", str(operations), "--replicas", str(replicas)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdin is not None
    url = ""
    while not url.startswith("http"):
        url = process.stdout.readline().strip()
    calls: Counter[str] = Counter()
    counting = threading.Lock()
    cluster = KubernetesCluster.for_url(url, "sandbox-token")
    try:
        api_client = cluster.api_client
        original = api_client.call_api

        def counted(method: str, *args: Any, **kwargs: Any) -> Any:
            with counting:
                calls[method] += 1
            return original(method, *args, **kwargs)

        api_client.call_api = counted  # type: ignore[method-assign]
        await cluster.warm_up()
        await one(cluster, "app-0000")  # the first call pays for imports and connection set-up
        calls.clear()
        names = [f"app-{i:04d}" for i in range(1, operations)]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for name in names:
            await one(cluster, name)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        cluster.close()
        process.stdin.close()
        process.wait()
    count = len(names)
    return {"operations": count, "cpu_ms": 1000 * cpu / count, "wall_ms": 1000 * wall / count,
            "calls": sum(calls.values()) / count, "by_method": dict(calls)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operations", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet()
    if args.serve:
        serve(args.operations, args.replicas)
        return
    figures = asyncio.run(run(args.operations, args.replicas))
    print(f"executor: {figures['operations']} restarts (inspect, dry run, call, observe until done)")
    print(f"  CPU per operation   {figures['cpu_ms']:.1f} ms")
    print(f"  wall per operation  {figures['wall_ms']:.1f} ms")
    print(f"  API calls per op    {figures['calls']:.1f}  {figures['by_method']}")


if __name__ == "__main__":
    main()
