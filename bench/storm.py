"""Alert storm benchmark (not a test): 1,000 alerts over 20 workloads, sent as Alertmanager sends them
(notifications of up to 50 alerts), into a real `signoff run` (Slack HTTP mode against the fake Slack,
sandbox API server in its own process, SQLite file).

    python bench/storm.py [--alerts 1000] [--workloads 20] [--per-notification 50] [--concurrency 4]

Reports the alerts digested per second (the first alert of each workload opens an incident with a
proposal; the rest join it), the chat messages posted, and the time until the last card was posted.
Goals (issue 12): at most one card per workload plus digests; no alert lost (every alert belongs to an
incident); at least 500 alerts/s for alerts that join an existing incident.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.db.database import Database  # noqa: E402
from testkit.harness import API_TOKEN, Deployment  # noqa: E402


def alert(n: int, workloads: int) -> dict[str, Any]:
    workload = f"app-{n % workloads:04d}"
    return {
        "status": "firing",
        "labels": {"alertname": "KubePodCrashLooping", "namespace": "crash", "pod": f"{workload}-7c9f8d-p{n}",
                   "container": "app", "severity": "warning", "job": "kube-state-metrics"},
        "annotations": {"summary": "crash looping", "description": f"pod {n} restarts"},
        "startsAt": "2026-11-27T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
        "fingerprint": f"storm{n:08d}",
    }


def notification(alerts: list[dict[str, Any]], group: int) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "signoff", "groupKey": f"storm-{group}",
            "groupLabels": {"alertname": "KubePodCrashLooping", "namespace": "crash"}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "", "truncatedAlerts": 0, "alerts": alerts}


async def post_all(url: str, payloads: list[dict[str, Any]], concurrency: int) -> float:
    queue = list(reversed(payloads))
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        async def worker() -> None:
            while queue:
                body = json.dumps(queue.pop())
                async with session.post(url, data=body, headers=headers) as response:
                    assert response.status == 200, await response.text()
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def filed(database_url: str) -> tuple[int, int, int, int]:
    """(alerts recorded, alerts whose incident exists, incidents, requests)."""
    db = Database(database_url)
    try:
        def read(uow: Any) -> tuple[int, int, int, int]:
            sql = uow.connection.exec_driver_sql
            alerts = int(sql("SELECT count(*) FROM incident_alerts").scalar_one())
            joined = int(sql("SELECT count(*) FROM incident_alerts a JOIN incidents i ON i.id = a.incident_id")
                         .scalar_one())
            return (alerts, joined, int(sql("SELECT count(*) FROM incidents").scalar_one()),
                    int(sql("SELECT count(*) FROM requests").scalar_one()))

        return await db.read(read)
    finally:
        await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--workloads", type=int, default=20)
    parser.add_argument("--per-notification", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--settle", type=float, default=75.0, help="seconds to wait for cards and digests")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite+aiosqlite:///{tmp}/storm.db"
        world = Deployment(Path(tmp), database_url, replicas=1, deployments=args.workloads,
                           extra_env={"SIGNOFF_LOG_LEVEL": "error"})
        try:
            await world.start()
            url = world.replicas[0].base + "/api/v1/alerts"
            alerts = [alert(n, args.workloads) for n in range(args.alerts)]
            size = args.per_notification
            # The first notification carries the storm's first alerts: one per workload opens its incident.
            first, rest = alerts[:size], alerts[size:]
            started = time.monotonic()
            opening = await post_all(url, [notification(first, 0)], 1)
            joining_payloads = [notification(rest[i:i + size], 1 + i // size) for i in range(0, len(rest), size)]
            joining = await post_all(url, joining_payloads, args.concurrency)
            total = opening + joining
            deadline = time.monotonic() + args.settle
            # Cards and digests go out at the channel's budget; wait until the digest of the second minute too.
            last_card_at = digest_at = None
            while time.monotonic() < deadline:
                posts = [c for c in world.slack.calls_to("chat.postMessage")
                         if not c.failed and not c.args.get("thread_ts")]
                cards = [c for c in posts if "blocks" in c.args and "Digest" not in str(c.args.get("text", ""))]
                digests = [c for c in posts if "Digest" in str(c.args.get("text", ""))]
                listed = sum(str(c.args.get("text", "")).count("• R-") for c in digests)
                if cards:
                    last_card_at = max(c.at for c in cards)
                if digests:
                    digest_at = max(c.at for c in digests)
                if len(cards) + listed >= args.workloads:
                    break
                await asyncio.sleep(0.25)
            recorded, joined, incidents, requests = await filed(database_url)
            posts = [c for c in world.slack.calls_to("chat.postMessage") if not c.failed]
            updates = [c for c in world.slack.calls_to("chat.update") if not c.failed]
            print(f"alerts          : {args.alerts} over {args.workloads} workloads, notifications of {size}")
            print(f"digested        : {args.alerts / total:7.1f} alerts/s overall ({total:.2f} s)")
            print(f"  opening       : {len(first)} alerts in {opening:.2f} s ({args.workloads} new incidents, "
                  "each with a proposal)")
            print(f"  joining       : {len(rest)} alerts in {joining:.2f} s = {len(rest) / joining:7.1f} alerts/s "
                  "(goal >= 500/s)")
            print(f"incidents       : {incidents} with {requests} proposals; alerts recorded {recorded}, "
                  f"in an incident {joined} (lost: {args.alerts - joined})")
            top = [c for c in posts if not c.args.get("thread_ts")]
            digests = [c for c in top if "Digest" in str(c.args.get("text", ""))]
            print(f"chat messages   : {len(posts)} posted ({len(top) - len(digests)} cards, {len(digests)} digests, "
                  f"{len(posts) - len(top)} thread replies) + {len(updates)} card edits")
            if last_card_at is not None:
                print(f"last card       : {last_card_at - started:.2f} s after the first notification")
            if digest_at is not None:
                print(f"last digest     : {digest_at - started:.2f} s after the first notification")
        finally:
            world.close()


if __name__ == "__main__":
    asyncio.run(main())
