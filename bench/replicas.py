"""Replica benchmark (not a test): requests per second to completion with 1 and 2 `signoff run`
processes on one PostgreSQL, side by side in one run.

    python bench/replicas.py [--requests 200] [--concurrency 16]

A request's life: an assistant asks through the HTTP API, two people click Approve in Slack (signed
requests to /slack/events, spread over the replicas), signoff executes it once against the sandbox
API server (its own process) and posts the result in the card's thread. Completion = the outcome
message is in the thread.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from itertools import cycle
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.harness import SIGNERS, Deployment, deployment
from testkit.postgres import postgres_database


async def run(world: Deployment, requests: int, concurrency: int) -> float:
    await world.start()
    replicas = cycle(world.replicas)
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def one(index: int) -> None:
            async with gate:
                request_id = await world.create_request(session, next(replicas), f"app-{index:04d}")
                assert request_id is not None
                for user in SIGNERS:
                    assert await world.click(session, next(replicas), user, request_id)
                while not world.outcome_messages(request_id):
                    await asyncio.sleep(0.02)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        elapsed = time.perf_counter() - started
    view = await world.database_view()
    assert all(count == 1 for count in view["claims"].values())
    return requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    rates = {}
    for replicas in (1, 2):
        databases = postgres_database()
        url = next(databases)
        try:
            with tempfile.TemporaryDirectory() as tmp, deployment(Path(tmp), url, replicas=replicas,
                                                                  deployments=args.requests) as world:
                rates[replicas] = asyncio.run(run(world, args.requests, args.concurrency))
        finally:
            for _ in databases:
                pass
        print(f"{replicas} replica(s): {rates[replicas]:6.1f} requests/s to completion "
              f"({args.requests} requests, {args.concurrency} in flight)")
    print(f"2 replicas / 1 replica: {rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
