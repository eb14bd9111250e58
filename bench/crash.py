"""Crash test at full size (not a unit test): SIGKILL `signoff run` at random points of 200 request
lifecycles, restart it, and count lost signatures, double executions and unreported outcomes.

    python bench/crash.py [--lifecycles 200] [--seed 7] [--mean-kill-interval 1.5] [--database URL]

Each lifecycle: an assistant asks for a restart of its own deployment through the HTTP API, two
people click Approve in Slack (signed requests to /slack/events; a click that fails is clicked
again), and the request executes once against a sandbox API server running in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.crash import run_crash_test


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lifecycles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--mean-kill-interval", type=float, default=1.5)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--database", help="a database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite+aiosqlite:///{tmp}/crash.db"
        report = await run_crash_test(Path(tmp), url, lifecycles=args.lifecycles, seed=args.seed,
                                      mean_kill_interval=args.mean_kill_interval, concurrency=args.concurrency,
                                      settle_timeout=300)
    print(report.describe())
    for name in ("lost_signatures", "double_executions", "unsigned_executions", "unreported"):
        if getattr(report, name):
            print(f"  {name}: {getattr(report, name)[:20]}")
    return 0 if report.clean else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
