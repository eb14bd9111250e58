"""End-to-end load bench (not a test): bot CPU per request and card latency under load (issue 17 item 6).

    python bench/e2e_load.py [--clients 8] [--seconds 20] [--no-floor] [--profile out.pstats]

One real `signoff run` (Slack HTTP mode against the fake Slack, HTTP API on, SQLite file, the
sandbox API server in its own process), driven by `--clients` concurrent clients for `--seconds`.
Each client, one request after the other:

  create (POST /api/v1/requests, risk high: quorum 2) → wait for the card on the fake Slack →
  two signed Approve clicks (bob, carol) on POST /slack/events → wait for the outcome in the
  card's thread ("R-n succeeded", posted once the restart is verified).

Measured on the bot process only (utime + stime from /proc/<pid>/stat over the load window):
  - bot CPU per completed request (ms), and throughput (completed requests/s);
  - card latency: create response → the card's chat.postMessage reaching the fake Slack (p50/p90);
  - Kubernetes API calls and watches per request, as the sandbox recorded them over the window;
  - click → cluster: the quorum-completing click sent → the `executed` timeline event (the real
    cluster write returned), p50/p90;
  - Slack Web API calls per request, by kind (card, reply, update, response_url), as the fake Slack recorded them;
with the ratios to the goals: ≤ 15 ms of bot CPU per request, card p50 ≤ 50 ms under load. The bot runs under
`bench/counted.py`, which counts its SQLite statements by kind over the window (sqlite3's trace callback).

The floor (default; `--no-floor` skips it, `--profile` too): right after the bot stops, `bench/e2e_floor.py`
runs in its own process against the same fake Slack and sandbox, under the same clients and pattern, doing per
request what the bot did in its window (the mean count of each Slack call kind, with arguments of the same mean
size, of each Kubernetes call kind, of each SQLite statement kind and transactions) with the same libraries
(aiohttp server, slack_bolt verifying and acking, slack_sdk, the official kubernetes client in threads with its
watches, raw sqlite3) and nothing of signoff. Printed: floor CPU per request (read from /proc as the bot's),
signoff / floor, 15 ms / floor, and both processes' counts kind by kind, with every difference of 0.05 or more.

`--baseline DIR --rounds N` runs another checkout's `bot` (e.g. `git archive e285ee7 | tar -x -C DIR`)
under the same load, alternating with this one, and prints the ratios: on a shared machine only
figures measured side by side compare.

`--profile FILE` runs the bot under cProfile in every thread, timed in thread CPU time
(`bench/profiled.py`; written at its graceful stop) and prints the top functions by own and
cumulative time. The profiler roughly doubles the CPU; compare shares, not milliseconds.

Figures on this machine (2 cores shared with the fakes, the sandbox, the clients and other engineers' test
runs, load average 5–8), `--baseline` (main at e285ee7) `--rounds 2`:
  before: 51.3–52.6 ms bot CPU per request, 11.3–13.7 requests/s, card p50 97.0–97.5 ms (p90 182–194 ms),
          click → cluster p50 189–190 ms; on a quieter machine 37.9–40.8 ms, card p50 65–81 ms
  after : 39.4–42.5 ms bot CPU per request (0.75–0.83×), 13.3–14.1 requests/s, card p50 47.5–59.2 ms
          (p90 94–123 ms), click → cluster p50 202–255 ms
Against 9792fdc (with the preview, pinning and watches), quiet machine, 3 alternating rounds: 58.3–68.5 →
51.5–54.5 ms (0.75–0.93×), card p50 45–52 → 39–41 ms, Kubernetes calls 12.0 → 8.1 per request.
The floor, two runs (8 clients × 20 s, load average 2–6): signoff 39.7, 38.8 ms; floor 16.6, 16.0 ms per request
(signoff / floor 2.40, 2.43; 15 ms / floor 0.91, 0.94), the external work matching kind by kind (printed).
Details and the profile's findings: docs/benchmarks.md, "End-to-end load".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.db.database import Database  # noqa: E402
from bench.e2e_floor import kube_key  # noqa: E402
from testkit.fakes.slack import FakeSlack, SlackCall, block_actions_body, post_signed  # noqa: E402
from testkit.harness import (  # noqa: E402
    API_TOKEN,
    CHANNEL,
    POLICY,
    SECRET,
    SIGNERS,
    Deployment,
    SignoffProcess,
    free_port,
    requester,
)

TICK = os.sysconf("SC_CLK_TCK")
REQUEST_ID = re.compile(r"\bR-\d+\b")
OUTCOME = re.compile(r"\b(R-\d+) (?:succeeded|failed|blocked|was interrupted|expired)")
TARGET_MS = 15.0
RECORDED_AT_MOST = 50_000  # the sandbox keeps this many calls (testkit/fakes/sandbox.py)
TARGET_CARD_MS = 50.0


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """utime + stime of a process (its threads included), or of one of its threads, from /proc."""
    with open(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class SlackIndex:
    """Follows the fake Slack's calls as they arrive: each request's card and outcome, with when."""

    def __init__(self, fake: FakeSlack) -> None:
        self._fake = fake
        self._seen = len(fake.calls)  # from now: the fake may hold another process's cards
        self.cards: dict[str, SlackCall] = {}
        self.outcomes: dict[str, SlackCall] = {}
        self._waiters: dict[tuple[str, str], asyncio.Event] = {}

    def event(self, kind: str, request_id: str) -> asyncio.Event:
        return self._waiters.setdefault((kind, request_id), asyncio.Event())

    async def follow(self) -> None:
        while True:
            calls = self._fake.calls
            new, self._seen = calls[self._seen:len(calls)], len(calls)
            for call in new:
                if call.method != "chat.postMessage" or call.failed:
                    continue
                text = str(call.args.get("text", ""))
                if not call.args.get("thread_ts"):
                    found = REQUEST_ID.search(text)
                    if found and "blocks" in call.args and found.group(0) not in self.cards:
                        self.cards[found.group(0)] = call
                        self.event("card", found.group(0)).set()
                else:
                    outcome = OUTCOME.search(text)
                    if outcome:
                        self.outcomes.setdefault(outcome.group(1), call)
                        self.event("outcome", outcome.group(1)).set()
            await asyncio.sleep(0.002)


@dataclass
class Figures:
    completed: int = 0
    failed: int = 0
    card_ms: list[float] = field(default_factory=list)
    clicked_at: dict[str, float] = field(default_factory=dict)  # request id → wall time of the quorum click
    elapsed: float = 0.0
    cpu: float = 0.0
    main_cpu: float = 0.0  # the main thread's (the event loop's); the rest ran in other threads
    kube_calls: int | None = None  # calls the sandbox recorded in the window (None: more than it keeps)
    kube_watches: int = 0
    kube: Counter[str] = field(default_factory=Counter)  # by kind (e2e_floor.kube_key)
    slack: Counter[str] = field(default_factory=Counter)  # Web API calls in the window by kind (slack_kind)
    slack_bytes: Counter[str] = field(default_factory=Counter)  # their arguments' JSON, summed by kind
    sql: Counter[str] = field(default_factory=Counter)  # SQLite statements by kind (bench/counted.py)

    def per_request(self, counts: Counter[str]) -> dict[str, float]:
        return {kind: n / max(1, self.completed) for kind, n in counts.items()}


def slack_kind(call: SlackCall) -> str:
    """card (a top-level chat.postMessage with blocks), reply (in a thread), update, response_url, or the method."""
    if call.method == "chat.postMessage":
        return "reply" if call.args.get("thread_ts") else "card" if "blocks" in call.args else "message"
    return {"chat.update": "update"}.get(call.method, call.method)


async def one_request(session: aiohttp.ClientSession, base: str, index: SlackIndex, target: str,
                      figures: Figures, fake: FakeSlack, timeout: float = 30.0) -> bool:
    body = {"action": f"rollout restart deployment/{target} -n crash", "requested_by": requester(target),
            "risk": "high", "reason": "load"}
    async with session.post(base + "/api/v1/requests", json=body,
                            headers={"Authorization": f"Bearer {API_TOKEN}"}) as response:
        if response.status != 201:
            print("create refused:", response.status, await response.text(), file=sys.stderr)
            return False
        request_id = str((await response.json())["id"])
    created = time.monotonic()
    async with asyncio.timeout(timeout):
        await index.event("card", request_id).wait()
    card = index.cards[request_id]
    figures.card_ms.append(max(0.0, card.at - created) * 1000)
    ts = str(card.response.get("ts")) if card.response else "1.0"
    for n, user in enumerate(SIGNERS):
        click = block_actions_body(user, CHANNEL, ts, "signoff_approve", request_id, fake.new_response_url(CHANNEL))
        if n == len(SIGNERS) - 1:
            figures.clicked_at[request_id] = time.time()
        status, text = await post_signed(base + "/slack/events", click, SECRET, session=session)
        if status != 200:
            print("click refused:", status, text, file=sys.stderr)
            return False
    async with asyncio.timeout(timeout):
        await index.event("outcome", request_id).wait()
    return "succeeded" in str(index.outcomes[request_id].args.get("text", ""))


async def drive(world: Deployment, pid: int, base: str, clients: int, seconds: float, targets_per_client: int, *,
                signals: bool = False) -> Figures:
    """Load the process `pid` (serving on `base`) for `seconds`; `signals`: SIGUSR1 when the window begins and
    ends (bench/profiled.py, bench/counted.py and bench/e2e_floor.py start and stop measuring on it)."""
    index = SlackIndex(world.slack)
    figures = Figures()
    follower = asyncio.create_task(index.follow())
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            # Warm-up: one request per client (lazy clients, first statements), not measured.
            warm = Figures()
            await asyncio.gather(*(one_request(session, base, index, f"app-{c:04d}", warm, world.slack)
                                   for c in range(clients)))

            async def client(c: int) -> None:
                n = 1
                while time.monotonic() < deadline:
                    target = f"app-{c + clients * (n % targets_per_client):04d}"
                    n += 1
                    try:
                        ok = await one_request(session, base, index, target, figures, world.slack)
                    except TimeoutError:
                        ok = False
                    if ok:
                        figures.completed += 1
                    else:
                        figures.failed += 1

            if signals:
                os.kill(pid, signal.SIGUSR1)
            await asyncio.to_thread(world.sandbox.clear_requests)
            slack_from = len(world.slack.calls)
            cpu0, main0, started = cpu_seconds(pid), cpu_seconds(pid, pid), time.monotonic()
            deadline = started + seconds
            await asyncio.gather(*(client(c) for c in range(clients)))
            figures.elapsed = time.monotonic() - started
            figures.cpu, figures.main_cpu = cpu_seconds(pid) - cpu0, cpu_seconds(pid, pid) - main0
            if signals:
                os.kill(pid, signal.SIGUSR1)
            for call in world.slack.calls[slack_from:]:
                figures.slack[slack_kind(call)] += 1
                figures.slack_bytes[slack_kind(call)] += len(json.dumps(call.args))
            calls = [c for c in await asyncio.to_thread(world.sandbox.requests) if not c["path"].startswith("/_")]
            if len(calls) < RECORDED_AT_MOST - 1:
                figures.kube.update(kube_key(c["method"], c["path"], c["query"]) for c in calls)
                figures.kube_watches = sum(1 for call in calls if call["query"].get("watch") == "true")
                figures.kube_calls = len(calls) - figures.kube_watches
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    return figures


async def executed_at(database_url: str) -> dict[str, float]:
    db = Database(database_url)
    try:
        def read(uow: Any) -> list[tuple[str, str]]:
            return [(str(r[0]), str(r[1])) for r in uow.connection.exec_driver_sql(
                "SELECT request_id, at FROM timeline WHERE type = 'executed'").all()]

        rows = await db.read(read)
    finally:
        await db.dispose()
    return {rid: datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() for rid, at in rows}


def start_wrapped(world: Deployment, wrapper: str, out: Path) -> None:
    """The replica's own start, with the interpreter wrapped: bench/profiled.py (cProfile) or bench/counted.py
    (the SQLite statements counted)."""
    replica = world.replicas[0]
    replica.starts += 1
    log = (replica.workdir / f"{replica.name}.log").open("ab")
    env = {**replica.env, "SIGNOFF_HTTP_PORT": str(replica.port)}
    replica.process = subprocess.Popen([sys.executable, str(ROOT / "bench" / wrapper), str(out), "run"],
                                       cwd=replica.workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()


def start_logged(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


@dataclass
class Run:
    bot: Figures
    executed: dict[str, float]
    floor: Figures | None = None


def read_counts(path: Path) -> Counter[str]:
    return Counter(json.loads(path.read_text())) if path.exists() else Counter()


async def run_floor(world: Deployment, tmp: Path, bot: Figures, args: argparse.Namespace) -> Figures:
    """bench/e2e_floor.py in its own process, against the same fakes, doing per request what the bot did."""
    plan = {"slack": bot.per_request(bot.slack), "kube": bot.per_request(bot.kube), "sql": bot.per_request(bot.sql),
            "sizes": {kind: n / max(1, bot.slack[kind]) for kind, n in bot.slack_bytes.items()}}
    (tmp / "plan.json").write_text(json.dumps(plan))
    port = free_port()
    command = [sys.executable, str(ROOT / "bench" / "e2e_floor.py"), "--plan", str(tmp / "plan.json"),
               "--port", str(port), "--kubeconfig", str(world.sandbox.kubeconfig), "--slack-url", world.slack.api_url,
               "--slack-token", world.slack.bot_token, "--db", str(tmp / "floor.db"), "--token", API_TOKEN,
               "--signing-secret", SECRET, "--census", str(tmp / "floor-sql.json")]
    process = start_logged(command, tmp / "floor.log")
    try:
        floor = SignoffProcess(tmp, {}, "floor", port=port, process=process)
        await floor.wait_healthy()
        figures = await drive(world, process.pid, floor.base, args.clients, args.seconds, args.targets_per_client,
                              signals=True)
        await asyncio.sleep(0.2)  # the census is written on the second SIGUSR1
        figures.sql = read_counts(tmp / "floor-sql.json")
        return figures
    finally:
        process.terminate()
        process.wait(timeout=10)


async def measure(args: argparse.Namespace, tmp: Path, code: Path | None = None, *, floor: bool = False) -> Run:
    """One run; `code`: the signoff checkout whose `bot` runs (default: this one); `floor`: then the floor."""
    database_url = f"sqlite+aiosqlite:///{tmp}/load.db"
    targets = args.clients * args.targets_per_client
    # POLICY's card budget (1,000 a minute, the most a policy may say) covers a 20 s run at up to ~45/s.
    world = Deployment(tmp, database_url, replicas=1, deployments=targets, policy=POLICY,
                       extra_env={"SIGNOFF_LOG_LEVEL": args.log_level})
    if code is not None:
        world.env["PYTHONPATH"] = str(code)  # the replicas share this environment
    census = tmp / "bot-sql.json"
    replica = world.replicas[0]
    try:
        start_wrapped(world, "profiled.py" if args.profile else "counted.py",
                      args.profile_path if args.profile else census)
        await replica.wait_healthy()
        assert replica.process is not None
        figures = await drive(world, replica.process.pid, replica.base, args.clients, args.seconds,
                              args.targets_per_client, signals=True)
        replica.stop()
        figures.sql = read_counts(census)
        floor_figures = await run_floor(world, tmp, figures, args) if floor and figures.sql else None
    finally:
        world.close()
    return Run(figures, await executed_at(database_url), floor_figures)


def report(figures: Figures, executed: dict[str, float], baseline: Figures | None = None) -> None:
    done = max(1, figures.completed)
    per_request = figures.cpu / done * 1000
    clicks = [(executed[rid] - at) * 1000 for rid, at in figures.clicked_at.items() if rid in executed]
    print(f"requests        : {figures.completed} completed, {figures.failed} failed in {figures.elapsed:.1f} s "
          f"= {figures.completed / figures.elapsed:.1f} requests/s")
    print(f"bot CPU         : {figures.cpu:.2f} s = {per_request:.1f} ms per request "
          f"(goal <= {TARGET_MS:.0f} ms: ratio {per_request / TARGET_MS:.2f}); "
          f"{figures.cpu / figures.elapsed * 100:.0f}% of one core")
    print(f"card latency    : p50 {pct(figures.card_ms, 0.5):.1f} ms, p90 {pct(figures.card_ms, 0.9):.1f} ms "
          f"(goal p50 <= {TARGET_CARD_MS:.0f} ms)")
    print(f"click → cluster : p50 {pct(clicks, 0.5):.1f} ms, p90 {pct(clicks, 0.9):.1f} ms "
          f"(quorum click sent → `executed` event)")
    if figures.kube_calls is not None:
        print(f"Kubernetes API  : {figures.kube_calls / done:.1f} calls and {figures.kube_watches / done:.1f} watches "
              "per request")
    slack = figures.per_request(figures.slack)
    print("Slack Web API   : " + ", ".join(f"{kind} {n:.2f}" for kind, n in sorted(slack.items()))
          + f" per request ({sum(slack.values()):.2f} calls)")
    if baseline is not None:
        base = baseline.cpu / max(1, baseline.completed) * 1000
        print(f"vs baseline     : CPU per request {per_request / base:.2f}×, card p50 "
              f"{pct(figures.card_ms, 0.5) / pct(baseline.card_ms, 0.5):.2f}×, throughput "
              f"{(figures.completed / figures.elapsed) / (baseline.completed / baseline.elapsed):.2f}×")


STATEMENTS = ("INSERT", "UPDATE", "DELETE", "SELECT")


def compare(what: str, bot: dict[str, float], floor: dict[str, float]) -> None:
    """Per request, kind by kind: the bot's count, the floor's, and where they differ by 0.05 or more."""
    print(f"{what:<16}: bot {sum(bot.values()):.2f}, floor {sum(floor.values()):.2f} per request")
    for kind in sorted(set(bot) | set(floor)):
        b, f = bot.get(kind, 0.0), floor.get(kind, 0.0)
        note = f"   difference {f - b:+.2f}" if abs(f - b) >= 0.05 else ""
        print(f"    {kind:<72} {b:6.2f} {f:6.2f}{note}")


def report_floor(bot: Figures, floor: Figures) -> None:
    """The floor beside the bot: its CPU per request, the ratio, and the external work each did, counted."""
    mine, base = bot.cpu / max(1, bot.completed) * 1000, floor.cpu / max(1, floor.completed) * 1000
    print("--- floor (bench/e2e_floor.py: the same external work, the same libraries, nothing of signoff)")
    print(f"floor requests  : {floor.completed} completed, {floor.failed} failed in {floor.elapsed:.1f} s "
          f"= {floor.completed / floor.elapsed:.1f} requests/s; card p50 {pct(floor.card_ms, 0.5):.1f} ms")
    print(f"floor CPU       : {floor.cpu:.2f} s = {base:.1f} ms per request; signoff {mine:.1f} ms; "
          f"signoff / floor = {mine / base:.2f}; goal {TARGET_MS:.0f} ms / floor = {TARGET_MS / base:.2f}")
    for who, figures in (("signoff", bot), ("floor", floor)):
        done = max(1, figures.completed)
        print(f"    {who}: event loop thread {figures.main_cpu / done * 1000:.1f} ms, other threads (Kubernetes client "
              f"and watches{', SQLite writer' if who == 'signoff' else ''}) "
              f"{(figures.cpu - figures.main_cpu) / done * 1000:.1f} ms per request")
    compare("Slack calls", bot.per_request(bot.slack), floor.per_request(floor.slack))
    sizes = {kind: bot.slack_bytes[kind] / max(1, bot.slack[kind]) for kind in bot.slack}
    print("    argument bytes per call, bot / floor: " + ", ".join(
        f"{kind} {size:.0f} / {floor.slack_bytes[kind] / max(1, floor.slack[kind]):.0f}"
        for kind, size in sorted(sizes.items())))
    compare("Kubernetes calls", bot.per_request(bot.kube), floor.per_request(floor.kube))
    compare("SQLite", bot.per_request(bot.sql), floor.per_request(floor.sql))
    for who, figures in (("bot", bot), ("floor", floor)):
        sql = figures.per_request(figures.sql)
        print(f"    {who}: {sql.get('BEGIN', 0):.1f} transactions, "
              f"{sum(n for k, n in sql.items() if k.split()[0] in STATEMENTS):.1f} statements per request")


def show_profile(path: str, top: int) -> None:
    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--targets-per-client", type=int, default=30)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--profile", help="write the bot's cProfile stats here and print the top")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--baseline", type=Path, help="another signoff checkout (e.g. `git archive` of main): "
                        "run it first under the same load and print the ratios")
    parser.add_argument("--rounds", type=int, default=1, help="with --baseline: alternate this many times")
    parser.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                        help="after the bot, run bench/e2e_floor.py under the same load (off with --profile)")
    args = parser.parse_args()
    args.profile_path = Path(args.profile).resolve() if args.profile else None
    print(f"load            : {args.clients} clients × {args.seconds:.0f} s, SQLite, Slack HTTP mode, sandbox "
          "in its own process")
    for _ in range(args.rounds if args.baseline else 1):
        baseline = None
        if args.baseline:
            with tempfile.TemporaryDirectory() as tmp:
                base_run = asyncio.run(measure(args, Path(tmp), args.baseline.resolve()))
            baseline = base_run.bot
            print(f"--- baseline ({args.baseline})")
            report(baseline, base_run.executed)
            print("--- this checkout")
        with tempfile.TemporaryDirectory() as tmp:
            run = asyncio.run(measure(args, Path(tmp), floor=args.floor and not args.profile))
        report(run.bot, run.executed, baseline)
        if run.floor is not None:
            report_floor(run.bot, run.floor)
    if args.profile:
        show_profile(args.profile, args.top)


if __name__ == "__main__":
    main()
