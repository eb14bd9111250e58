"""Core benchmark (not a test): signatures per second through the real service on a SQLite file,
against raw sqlite3 writing the same rows in the same run; and timeline read latency for one
request among 10^6 events.

    python bench/core.py [--signatures 3000] [--events 1000000]

Goals (issue 2): >= 500 signatures/s, >= 0.3 of the raw rate, timeline p99 < 20 ms at 10^6 events.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog

from bot.bootstrap import bootstrap
from bot.settings import Settings
from core.domain.events import GENESIS_HASH, EventType, NewEvent, format_at, link
from core.domain.policy import Person, Risk
from core.domain.policy_file import parse_policy

POLICY = """
[risk.medium]
quorum = 25
approvers = ["*"]
"""
SIGNERS_PER_REQUEST = 20


async def service_signatures(path: Path, total: int) -> tuple[float, int]:
    settings = Settings(SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{path}", SIGNOFF_CLUSTER="sandbox")
    policy = parse_policy(POLICY, "bench")
    async with bootstrap(settings, policy=policy) as app:
        requests = []
        for i in range((total + SIGNERS_PER_REQUEST - 1) // SIGNERS_PER_REQUEST):
            created = await app.service.request("rollout restart deployment/api -n prod", by=Person(name=f"req{i}"),
                                                via="console", risk=Risk.medium)
            requests.append(created.id)
        jobs = [(rid, f"signer{n}") for n in range(SIGNERS_PER_REQUEST) for rid in requests][:total]
        started = time.perf_counter()
        # Ten concurrent clickers, as in a busy channel; every call is one full transaction.
        queue = list(jobs)

        async def clicker() -> None:
            while queue:
                rid, name = queue.pop()
                await app.service.sign(rid, by=Person(name=name), via="slack")

        await asyncio.gather(*(clicker() for _ in range(10)))
        elapsed = time.perf_counter() - started
        return len(jobs) / elapsed, len(jobs)


def raw_signatures(path: Path, total: int) -> float:
    """The same rows with sqlite3 and hand-written SQL: signature, request update, event, chain head, outbox."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript("""
        CREATE TABLE requests (id TEXT PRIMARY KEY, status TEXT, version INTEGER, data TEXT);
        CREATE TABLE signatures (id INTEGER PRIMARY KEY, request_id TEXT, person TEXT, via TEXT, at TEXT,
                                 UNIQUE (request_id, person));
        CREATE TABLE timeline (seq INTEGER PRIMARY KEY, at TEXT, type TEXT, status TEXT, title TEXT, detail TEXT,
                               actor TEXT, actor_role TEXT, request_id TEXT, incident_id TEXT, prev_hash TEXT,
                               hash TEXT);
        CREATE INDEX ix_tl ON timeline (request_id, seq);
        CREATE TABLE chain_head (id INTEGER PRIMARY KEY, seq INTEGER, hash TEXT);
        CREATE TABLE outbox (id INTEGER PRIMARY KEY, platform TEXT, channel TEXT, kind TEXT, key TEXT, body TEXT,
                             status TEXT, attempts INTEGER, created_at TEXT, next_attempt_at TEXT);
        INSERT INTO chain_head VALUES (1, 0, '');
    """)
    requests = [f"R-{i}" for i in range((total + SIGNERS_PER_REQUEST - 1) // SIGNERS_PER_REQUEST)]
    doc = json.dumps({"x": "y" * 1500})
    conn.executemany("INSERT INTO requests VALUES (?, 'pending', 0, ?)", [(r, doc) for r in requests])
    jobs = [(rid, f"signer{n}") for n in range(SIGNERS_PER_REQUEST) for rid in requests][:total]
    prev = "0" * 64
    started = time.perf_counter()
    for seq, (rid, person) in enumerate(jobs, start=1):
        at = format_at(datetime.now(UTC))
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SELECT data FROM requests WHERE id = ?", (rid,)).fetchone()
        conn.execute("INSERT INTO signatures (request_id, person, via, at) VALUES (?, ?, 'slack', ?)",
                     (rid, person, at))
        conn.execute("UPDATE requests SET version = version + 1, data = ? WHERE id = ?", (doc, rid))
        conn.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone()
        digest = hashlib.sha256((prev + rid + person + at).encode()).hexdigest()
        conn.execute("INSERT INTO timeline VALUES (?, ?, 'signed', 'pending', ?, 'via slack', ?, 'approver', ?, NULL,"
                     " ?, ?)", (seq, at, f"{person} signed", person, rid, prev, digest))
        conn.execute("UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1", (seq, digest))
        conn.execute("INSERT INTO outbox (platform, channel, kind, key, body, status, attempts, created_at,"
                     " next_attempt_at) VALUES ('slack', 'C1', 'card_update', ?, '{}', 'pending', 0, ?, ?)",
                     (rid, at, at))
        conn.execute("COMMIT")
        prev = digest
    elapsed = time.perf_counter() - started
    conn.close()
    return len(jobs) / elapsed


async def timeline_latency(path: Path, events: int, samples: int = 500) -> tuple[float, float, float]:
    settings = Settings(SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{path}", SIGNOFF_CLUSTER="sandbox")
    from adapters.db.database import Database

    db = Database(settings.database_url)
    await db.upgrade()
    await db.dispose()
    per_request = 10
    requests = events // per_request
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    prev = GENESIS_HASH
    base = datetime(2026, 1, 1, tzinfo=UTC)
    batch = []
    started = time.perf_counter()
    for seq in range(1, events + 1):
        # Interleave requests, as a busy cluster does: one request's events are spread over the table.
        rid = f"R-{(seq - 1) % requests + 1}"
        event = link(NewEvent(at=base, type=EventType.signed, status="pending", title="someone signed",
                              actor="someone", actor_role="approver", request_id=rid), seq, prev)
        prev = event.hash
        row = event.body()
        batch.append((row["seq"], row["at"], row["type"], row["status"], row["title"], row["detail"], row["actor"],
                      row["actor_role"], row["request_id"], row["incident_id"], row["prev_hash"], event.hash,
                      row.get("digest")))
        if len(batch) >= 50_000:
            conn.executemany("INSERT INTO timeline VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
            batch.clear()
    if batch:
        conn.executemany("INSERT INTO timeline VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
    conn.execute("INSERT INTO chain_head VALUES (1, ?, ?)", (events, prev))
    conn.execute("COMMIT")
    conn.close()
    print(f"  seeded {events:,} events in {time.perf_counter() - started:.1f} s", flush=True)

    db = Database(settings.database_url)
    latencies = []
    rng = random.Random(7)
    for _ in range(samples):
        rid = f"R-{rng.randint(1, requests)}"
        t0 = time.perf_counter()
        found = await db.read(lambda uow, rid=rid: uow.timeline.for_request(rid))
        latencies.append((time.perf_counter() - t0) * 1000)
        assert len(found) == per_request
    await db.dispose()
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1], latencies[-1]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signatures", type=int, default=3000)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        print(f"signatures: {args.signatures} through ApprovalService.sign (10 concurrent clickers) vs raw sqlite3")
        ours, count = await service_signatures(tmpdir / "service.db", args.signatures)
        raw = raw_signatures(tmpdir / "raw.db", args.signatures)
        print(f"  signoff service : {ours:8.0f} signatures/s ({count} signatures)")
        print(f"  raw sqlite3     : {raw:8.0f} signatures/s (same rows, one transaction each)")
        print(f"  ratio           : {ours / raw:8.2f}  (goal >= 0.3; goal >= 500/s absolute)")
        print(f"timeline: one request's events among {args.events:,}")
        p50, p99, worst = await timeline_latency(tmpdir / "timeline.db", args.events)
        print(f"  read latency p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {worst:.2f} ms (goal p99 < 20 ms)")


if __name__ == "__main__":
    asyncio.run(main())
