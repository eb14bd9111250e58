"""On-call page benchmark (not a test): a card whose risk level pages a schedule (`page = ["oncall.primary"]`)
against the same card without, through the real service on a SQLite file, interleaved in one run; and the
first post's mentions alone (who can sign, plus the person on call from the feed's cached copy).

    python bench/oncall_page.py [--requests 300] [--shifts 500]

Goal (issue 20): a card with a page mention is no slower than one without (ratio ≈ 1): the feed is read in
the background, and on the request path the person on call is a look-up in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog

from bot.bootstrap import bootstrap
from bot.settings import Settings
from core.app.notify import who_can_sign
from core.app.oncall import first_post_mentions
from core.domain.policy import Person, Risk
from core.domain.policy_file import parse_policy
from testkit.ics import rotation

PEOPLE = "".join(f'[people.p{n}]\nslack = "U{n:05d}"\nemail = "p{n}@example.com"\ngroups = ["sre"]\n\n'
                 for n in range(50))
LEVELS = """
[requests]
max_per_person_per_minute = 10000
[oncall.primary]
ical = "{feed}"

[risk.medium]
quorum = 1
approvers = ["sre"]

[risk.high]
quorum = 1
approvers = ["sre"]
page = ["oncall.primary"]
"""


def feed_file(directory: Path, shifts: int) -> Path:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=shifts // 2)
    path = directory / "primary.ics"
    path.write_bytes(rotation(*[(start + timedelta(hours=n), start + timedelta(hours=n + 1), f"Primary p{n % 50}",
                                 f"p{n % 50}@example.com") for n in range(shifts)]))
    return path


async def run(requests: int, shifts: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        feed = feed_file(Path(directory), shifts)
        policy = parse_policy(PEOPLE + LEVELS.format(feed=feed), "bench")
        settings = Settings(SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{directory}/bench.db",
                            SIGNOFF_CLUSTER="sandbox", SLACK_CHANNEL="C0BENCH")
        async with bootstrap(settings, policy=policy) as app:
            assert app.calendars is not None
            await app.calendars.refresh_all()
            on_now = app.calendars.on_call.person("primary")
            assert on_now is not None, "nobody on call: the bench would measure the fallback"
            times: dict[Risk, list[float]] = {Risk.medium: [], Risk.high: []}
            for n in range(requests * 2):
                risk = Risk.high if n % 2 else Risk.medium  # interleaved: the same load for both
                started = time.perf_counter()
                await app.service.request("rollout restart deployment/api -n prod", by=Person(name="p49"),
                                          via="console", risk=risk)
                times[risk].append(time.perf_counter() - started)
            paged, plain = statistics.median(times[Risk.high]), statistics.median(times[Risk.medium])
            print(f"request → stored card, median: with page {paged * 1000:.2f} ms, without {plain * 1000:.2f} ms, "
                  f"ratio {paged / plain:.2f} ({requests} each; on call now: {on_now}; {shifts} shifts)")

            request = await app.service.get("R-2")
            rule = policy.rule_for(Risk.high)
            on_call = app.calendars.on_call
            loops = 2000
            started = time.perf_counter()
            for _ in range(loops):
                who_can_sign(policy, request, "slack")
            alone = (time.perf_counter() - started) / loops
            started = time.perf_counter()
            for _ in range(loops):
                first_post_mentions(who_can_sign(policy, request, "slack"), on_call, rule, request, "slack")
            with_page = (time.perf_counter() - started) / loops
            print(f"first post's mentions: {alone * 1e6:.1f} µs without the schedule, {with_page * 1e6:.1f} µs with "
                  f"it (+{(with_page - alone) * 1e6:.1f} µs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--shifts", type=int, default=500)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    asyncio.run(run(args.requests, args.shifts))


if __name__ == "__main__":
    main()
