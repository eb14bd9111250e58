"""List endpoints benchmark (not a test): pages of history over HTTP at 100,000 requests and 10⁶ events.

    python bench/lists.py [--requests 100000] [--events 1000000] [--calls 200]

A SQLite file is filled with `--requests` requests (copies of one real request, spread over statuses,
requesters and 100 days) and `--events` timeline events, then the real aiohttp app (`bootstrap` +
`build_http_app`, the sandbox cluster) serves GET /api/v1/requests, /incidents, /playbooks and /audit on
loopback. Each query runs `--calls` times; p50 and p99 are printed side by side with the floor: raw
`sqlite3` running the same page's SELECT on the same file (no HTTP, no JSON, no models). Then
`signoff audit export` writes the whole chain to a file, against raw `sqlite3` + `json.dumps` doing the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bot.bootstrap import bootstrap  # noqa: E402
from bot.http import HttpServer, build_http_app  # noqa: E402
from bot.logs import configure_logging  # noqa: E402
from bot.settings import Settings  # noqa: E402
from core.domain.events import format_at  # noqa: E402
from core.domain.listing import encode_cursor  # noqa: E402
from core.domain.policy import Person  # noqa: E402

TOKEN = "bench-lists-token-0123456789"
STATUSES = ["succeeded"] * 80 + ["failed"] * 5 + ["rejected"] * 5 + ["expired"] * 9 + ["pending"]
REQUESTERS = [f"user{n}" for n in range(50)]
START = datetime(2026, 8, 1, tzinfo=UTC)


def fill(path: Path, template: dict[str, object], requests: int, events: int) -> None:
    span = timedelta(days=100) / requests
    with sqlite3.connect(path) as conn:
        rows = []
        for number in range(1, requests + 1):
            created = START + span * number
            data = dict(template, id=f"R-{number}", status=STATUSES[number % len(STATUSES)],
                        requested_by=REQUESTERS[number % len(REQUESTERS)], created_at=created.isoformat())
            rows.append((f"R-{number}", number, data["status"], 1, data["requested_by"], None, format_at(created),
                         format_at(created + timedelta(minutes=30)), None, None, None, json.dumps(data)))
        conn.execute("DELETE FROM requests")
        conn.executemany("INSERT INTO requests (id, number, status, version, requested_by, incident_id, created_at, "
                         "expires_at, stale_at, claimed_by, lease_until, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        conn.execute("DELETE FROM timeline")
        batch = 100_000
        for first in range(1, events + 1, batch):
            conn.executemany(
                "INSERT INTO timeline (seq, at, type, status, title, detail, actor, actor_role, request_id, "
                "incident_id, prev_hash, hash, digest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                ((seq, format_at(START + timedelta(seconds=seq)), "signed", "pending", "signed", "", "bob",
                  "approver", f"R-{1 + seq % requests}", None, f"{seq - 1:064x}", f"{seq:064x}", None)
                 for seq in range(first, min(first + batch, events + 1))))
        conn.execute("UPDATE sequences SET value = ? WHERE name = 'request'", (requests,))
        conn.commit()


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def raw_floor(path: Path, sql: str, args: tuple[object, ...], calls: int) -> list[float]:
    conn = sqlite3.connect(path)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        conn.execute(sql, args).fetchall()
        samples.append(time.perf_counter() - started)
    conn.close()
    return samples


async def timed(session: aiohttp.ClientSession, url: str, calls: int, check: Callable[[dict[str, object]], bool]) \
        -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            body = await response.json()
        samples.append(time.perf_counter() - started)
        assert response.status == 200 and check(body), (url, response.status, str(body)[:300])
    return samples


async def run(requests: int, events: int, calls: int) -> None:
    configure_logging("json", level="warning")
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "lists.db"
        settings = Settings(SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{path}", SIGNOFF_CLUSTER="sandbox",
                            SIGNOFF_API_TOKEN=TOKEN)
        async with bootstrap(settings) as app:
            made = await app.service.request("rollout restart deployment/api -n prod", by=Person(name="alice"),
                                             via="api")
            template = json.loads(made.model_dump_json())
            started = time.perf_counter()
            await asyncio.to_thread(fill, path, template, requests, events)
            print(f"filled {requests:,} requests and {events:,} events in {time.perf_counter() - started:.1f} s")
            server = HttpServer(build_http_app(app), "127.0.0.1", 0)
            await server.start()
            base = f"http://127.0.0.1:{server.port}"
            middle = requests // 2
            since = format_at(START + timedelta(days=99))
            cases: list[tuple[str, str, str, tuple[object, ...]]] = [
                ("requests, first page", "/api/v1/requests?limit=50",
                 "SELECT data FROM requests ORDER BY number DESC LIMIT 51", ()),
                ("requests, a deep page", f"/api/v1/requests?limit=50&cursor={encode_cursor(middle)}",
                 "SELECT data FROM requests WHERE number < ? ORDER BY number DESC LIMIT 51", (middle,)),
                ("requests, status=pending", "/api/v1/requests?status=pending&limit=50",
                 "SELECT data FROM requests WHERE status = 'pending' ORDER BY number DESC LIMIT 51", ()),
                ("requests, one requester", "/api/v1/requests?requester=user7&limit=50",
                 "SELECT data FROM requests WHERE requested_by = 'user7' ORDER BY number DESC LIMIT 51", ()),
                ("requests, since the last day", f"/api/v1/requests?since={since}&status=failed&limit=50",
                 "SELECT data FROM requests WHERE status = 'failed' AND created_at >= ? AND number >= (SELECT number "
                 "FROM requests WHERE created_at >= ? ORDER BY created_at, number LIMIT 1) ORDER BY number DESC "
                 "LIMIT 51", (since, since)),
                ("audit, mid-chain", f"/api/v1/audit?after={events // 2}&limit=100",
                 "SELECT * FROM timeline WHERE seq > ? ORDER BY seq LIMIT 100", (events // 2,)),
                ("incidents", "/api/v1/incidents?limit=50",
                 "SELECT data FROM incidents ORDER BY created_at DESC, id DESC LIMIT 51", ()),
            ]
            print(f"{'query':32} {'p50 ms':>8} {'p99 ms':>8} {'raw p50':>8} {'raw p99':>8} {'p99 goal':>9}")
            async with aiohttp.ClientSession() as session:
                for name, url, sql, args in cases:
                    samples = await timed(session, base + url, calls, lambda body: "items" in body)
                    floor = raw_floor(path, sql, args, calls)
                    p50, p99 = percentiles(samples)
                    r50, r99 = percentiles(floor)
                    print(f"{name:32} {p50:8.2f} {p99:8.2f} {r50:8.2f} {r99:8.2f} {'✔' if p99 < 20 else '✘':>9}")
            await server.stop()
        exported, seconds = await asyncio.to_thread(export_file, path, Path(tmp) / "chain.jsonl")
        raw_seconds = await asyncio.to_thread(raw_export, path, Path(tmp) / "raw.jsonl")
        print(f"audit export to a file: {exported:,} events in {seconds:.1f} s = {exported / seconds:,.0f} events/s "
              f"(goal ≥ 50,000/s {'✔' if exported / seconds >= 50_000 else '✘'}); raw sqlite3 + json.dumps: "
              f"{exported / raw_seconds:,.0f} events/s (ratio {raw_seconds / seconds:.2f})")


def export_file(path: Path, target: Path) -> tuple[int, float]:
    """`signoff audit export > file` as a real process, start-up included."""
    env = {**os.environ, "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{path}", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    with target.open("w") as out:
        subprocess.run([sys.executable, "-m", "bot", "audit", "export"], stdout=out, env=env, check=True)
    seconds = time.perf_counter() - started
    with target.open() as lines:
        return sum(1 for _ in lines), seconds


def raw_export(path: Path, target: Path) -> float:
    started = time.perf_counter()
    with sqlite3.connect(path) as conn, target.open("w") as out:
        conn.row_factory = sqlite3.Row
        for row in conn.execute("SELECT * FROM timeline ORDER BY seq"):
            out.write(json.dumps(dict(row), separators=(",", ":")) + "\n")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200)
    options = parser.parse_args()
    asyncio.run(run(options.requests, options.events, options.calls))


if __name__ == "__main__":
    main()
