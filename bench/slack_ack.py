"""Slack acknowledgement bench (not a test): how fast signoff answers a signed button click on
POST /slack/events, against a bare slack_bolt AsyncApp with an empty handler, on the same
payloads, in the same run, on loopback.

    python bench/slack_ack.py [--clicks 300] [--warmup 30] [--slow 0.2]

The Web API is deliberately slow (chat.*, response_url: `--slow` seconds each) and so is the
sandbox Kubernetes API server (every call), while each click signs a request that then
executes: the acknowledgement must not depend on any of that. Goals (issue 3): median ratio
signoff/bare ≤ 1.2 and signoff p99 < 50 ms.

Layout: the fake Slack, the bare Bolt app and the load client each run on their own thread
and event loop; signoff runs on the main loop with its background workers, as in
`signoff run`. The client sends one click at a time, alternating which server goes first.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from adapters.loopthread import LoopThread
from bot.chats.slack import attach_slack
from bot.http import HttpServer, build_http_app
from bot.settings import Settings
from core.domain.policy import Person
from testkit.fakes.slack import FakeSlack, block_actions_body, sign
from testkit.support import hooked_app

T = TypeVar("T")
SECRET = "bench-signing-secret"
CHANNEL = "C0BENCH"
ACTION = "rollout restart deployment/api -n prod"


async def start_bare_bolt(api_url: str, bot_token: str, *, inline: bool = False) -> tuple[web.AppRunner, str]:
    """The reference: Bolt's defaults, one empty action handler, served by aiohttp the usual way.

    `inline=True` is the same app with `process_before_response=True` (what signoff uses): the
    floor without Bolt's 10 ms ack polling, to show what signoff's own listener costs.
    """
    bolt = AsyncApp(signing_secret=SECRET, client=AsyncWebClient(token=bot_token, base_url=api_url),
                    process_before_response=inline)

    @bolt.action(re.compile(".*"))
    async def handle(ack: AsyncAck) -> None:
        await ack()

    async def endpoint(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    http = web.Application()
    http.router.add_post("/slack/events", endpoint)
    runner = web.AppRunner(http, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/slack/events"


async def measure(targets: dict[str, str], bodies: list[bytes], warmup: int) -> dict[str, list[float]]:
    """One click at a time; the order of the two servers alternates so neither is always second."""
    samples: dict[str, list[float]] = {name: [] for name in targets}
    names = list(targets)
    async with aiohttp.ClientSession() as session:
        for i, body in enumerate(bodies):
            for name in names if i % 2 == 0 else reversed(names):
                headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, body)}
                started = time.perf_counter()
                async with session.post(targets[name], data=body, headers=headers) as response:
                    await response.read()
                elapsed = time.perf_counter() - started
                if response.status != 200:
                    raise RuntimeError(f"{name} answered {response.status} to click {i}")
                if i >= warmup:
                    samples[name].append(elapsed)
    return samples


def real_patches(sandbox: Any) -> int:
    return sum(1 for call in sandbox.requests if call[0] == "PATCH" and "dryRun" not in str(call[2]))


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"median": statistics.median(ordered) * 1000, "p90": cuts[89] * 1000, "p99": cuts[98] * 1000,
            "max": ordered[-1] * 1000}


async def run(clicks: int, warmup: int, slow: float) -> int:
    total = clicks + warmup
    client = LoopThread("bench-client")
    bare_thread = LoopThread("bench-bare-bolt")
    with FakeSlack.running_in_thread() as fake, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", SIGNOFF_CLUSTER="sandbox",
            SLACK_BOT_TOKEN=fake.bot_token, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake.api_url,
            SLACK_CHANNEL=CHANNEL,
        )
        bare_runner, bare_url = await bare_thread.run(start_bare_bolt(fake.api_url, fake.bot_token))
        inline_runner, inline_url = await bare_thread.run(start_bare_bolt(fake.api_url, fake.bot_token, inline=True))
        async with hooked_app(settings) as app:
            http = build_http_app(app)
            slack = attach_slack(app, http)
            server = HttpServer(http, "127.0.0.1", 0)
            # One request per click, so every click signs something and sets off an execution.
            for i in range(total):
                await app.service.request(ACTION, by=Person(name=f"requester{i}"), via="slack")
            await app.settle()
            cards = {m["blocks"][0]["text"]["text"].split(" ")[1]: m["ts"]
                     for m in fake.messages(CHANNEL) if m.get("blocks")}
            for method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "response_url"):
                fake.delay(method, slow)
            assert app.sandbox is not None
            app.sandbox.inject("*", ".*", status=None, times=None, delay=slow)  # slow, but answers

            bodies = []
            for i in range(total):
                request_id = f"R-{i + 1}"
                response_url = fake.new_response_url(CHANNEL, cards.get(request_id), user_id=f"U{i:05d}")
                bodies.append(block_actions_body(f"U{i:05d}", CHANNEL, cards.get(request_id, "1.0"),
                                                 "signoff_approve", request_id, response_url))
            ours_url = ""
            async with slack.running(), app.background():
                await server.start()
                ours_url = f"http://127.0.0.1:{server.port}/slack/events"
                try:
                    targets = {"signoff": ours_url, "bare Bolt": bare_url, "bare inline": inline_url}
                    samples = await client.run(measure(targets, bodies, warmup))
                    backlog_jobs = slack.jobs.in_flight
                    executed_then = real_patches(app.sandbox)
                finally:
                    await server.stop()
            failed = slack.jobs.failed
        await bare_thread.run(bare_runner.cleanup())
        await bare_thread.run(inline_runner.cleanup())
    bare_thread.stop()
    client.stop()

    ours, bare, inline = summary(samples["signoff"]), summary(samples["bare Bolt"]), summary(samples["bare inline"])
    ratio = ours["median"] / bare["median"]
    print(f"Slack ack latency: signed block_actions click on POST /slack/events, loopback, "
          f"{clicks} clicks each (+{warmup} warm-up), same payloads, alternating order")
    print(f"Web API chat.* and response_url delayed {slow * 1000:.0f} ms; sandbox Kubernetes API delayed "
          f"{slow * 1000:.0f} ms on every call; every click signs a request that then executes")
    print(f"{'':40} {'median':>9} {'p90':>9} {'p99':>9} {'max':>9}")
    rows = (("signoff", ours), ("bare Bolt", bare), ("bare Bolt, process_before_response=True", inline))
    for name, figures in rows:
        print(f"{name:40} " + " ".join(f"{figures[k]:7.2f}ms" for k in ("median", "p90", "p99", "max")))
    goals = ratio <= 1.2 and ours["p99"] < 50
    print(f"median ratio signoff/bare = {ratio:.2f} (goal ≤ 1.2); signoff p99 = {ours['p99']:.1f} ms (goal < 50 ms)"
          f" → {'met' if goals else 'NOT met'}")
    print(f"signoff over the inline floor: median +{ours['median'] - inline['median']:.2f} ms")
    print(f"when the last ack came back: {backlog_jobs} click jobs still running, {executed_then} of {total} "
          f"executions had reached the cluster; jobs failed: {failed}")
    return 0 if goals else 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clicks", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--slow", type=float, default=0.2, help="seconds added to chat.* and every sandbox call")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    raise SystemExit(asyncio.run(run(args.clicks, args.warmup, args.slow)))


if __name__ == "__main__":
    main()
