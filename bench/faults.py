"""Failure benchmark (not a test): how signoff behaves on a flaky API server and with one chat platform down.

    python bench/faults.py [--requests 100] [--fraction 0.3] [--stuck 1000]

Three measurements, each side by side with its floor in one run:
1. Transient Kubernetes faults: `--requests` restarts and scales, each signed and executed, with `--fraction`
   of all API calls answered 500/503 (seeded). Reported: how many succeed, against the same run with no faults.
2. The risk floor when the cluster cannot be read: scale requests whose replica count the cluster could not
   tell are counted at the worst case (high), never lower. Reported: the share rated high.
3. Outbox fairness: console messages delivered while `--stuck` messages for a platform without a gateway
   (Discord down) wait, against the same delivery with nothing stuck.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from io import StringIO
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.chats.console import attach_console  # noqa: E402
from bot.logs import configure_logging  # noqa: E402
from core.chat.messages import MessageKind, NewMessage  # noqa: E402
from core.domain.approvals import Place, RequestStatus  # noqa: E402
from core.domain.policy import Person, Risk  # noqa: E402
from testkit.support import make_settings, running_app, sqlite_url  # noqa: E402

CONSOLE = Place(platform="console", channel="console")
ALICE, BOB, CAROL = Person(name="alice"), Person(name="bob"), Person(name="carol")
UNLIMITED = "[requests]\nmax_per_person_per_minute = 10000\n"  # one requester makes them all


async def transient(requests: int, fraction: float) -> tuple[int, float]:
    with TemporaryDirectory() as tmp:
        async with running_app(make_settings(sqlite_url(Path(tmp) / "faults.db")), policy=UNLIMITED) as app:
            assert app.sandbox is not None
            names = app.sandbox.add_deployments("flaky", requests, replicas=2)
            if fraction:
                app.sandbox.inject_random(fraction, seed=7, statuses=(500, 503))
            started = time.perf_counter()
            succeeded = 0
            for index, name in enumerate(names):
                action = (f"rollout restart deployment/{name} -n flaky" if index % 2 else
                          f"scale deployment/{name} --replicas=3 -n flaky")
                request = await app.service.request(action, by=ALICE, via="console", origin=CONSOLE)
                for signer in (BOB, CAROL)[:request.quorum]:
                    await app.service.sign(request.id, by=signer, via="console")
                await app.settle()
                succeeded += (await app.service.get(request.id)).status is RequestStatus.succeeded
            return succeeded, time.perf_counter() - started


async def floor(requests: int) -> tuple[int, int]:
    with TemporaryDirectory() as tmp:
        async with running_app(make_settings(sqlite_url(Path(tmp) / "floor.db"))) as app:
            assert app.sandbox is not None
            app.sandbox.inject("GET", r"/deployments/", status=503, reason="ServiceUnavailable", times=None)
            high = 0
            for index in range(requests):
                request = await app.service.request("scale deployment/api --replicas=2 -n prod",
                                                    by=Person(name=f"asker-{index}"), via="console")
                high += request.risk is Risk.high
            return high, requests


async def fairness(stuck: int, messages: int = 200) -> float:
    with TemporaryDirectory() as tmp:
        async with running_app(make_settings(sqlite_url(Path(tmp) / "fair.db"))) as app:
            out = StringIO()
            attach_console(app, out)
            if stuck:
                await app.db.write(lambda uow: uow.outbox.add(
                    [NewMessage(platform="discord", channel="1", kind=MessageKind.channel, text=f"s{i}")
                     for i in range(stuck)]))
            await app.db.write(lambda uow: uow.outbox.add(
                [NewMessage(platform="console", channel="console", kind=MessageKind.channel, text=f"m{i}")
                 for i in range(messages)]))
            started = time.perf_counter()
            while out.getvalue().count("\n") < messages:
                if not await app.dispatcher.run_once():
                    break
            elapsed = time.perf_counter() - started
            assert out.getvalue().count("\n") >= messages, "console delivery stalled behind the stuck platform"
            return messages / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--stuck", type=int, default=1000)
    args = parser.parse_args()
    configure_logging("console", "error")
    clean, clean_s = await transient(args.requests, 0.0)
    flaky, flaky_s = await transient(args.requests, args.fraction)
    print(f"transient Kubernetes faults ({args.fraction:.0%} of calls 500/503): {flaky}/{args.requests} "
          f"succeeded ({flaky / args.requests:.0%}) in {flaky_s:.1f} s; "
          f"without faults {clean}/{args.requests} in {clean_s:.1f} s")
    high, total = await floor(min(args.requests, 20))
    print(f"risk floor with the cluster unreadable: {high}/{total} scale requests rated high (worst case)")
    free = await fairness(0)
    blocked = await fairness(args.stuck)
    print(f"outbox fairness: {blocked:.0f} console messages/s with {args.stuck} stuck for a platform that is down, "
          f"vs {free:.0f}/s with none (ratio {blocked / free:.2f})")


if __name__ == "__main__":
    asyncio.run(main())
