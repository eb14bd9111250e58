"""Discord acknowledgement bench (not a test): time from a button's INTERACTION_CREATE, sent by the
fake Discord gateway, to the interaction callback arriving at the fake's REST API; signoff's client
against a bare discord.py client answering a click the same way, on the same fake, in the same run.

    python bench/discord_ack.py [--clicks 300] [--warmup 30] [--slow 0.2]

Both clients stay connected to one fake, so every click reaches both sessions and each ignores the
other's `custom_id` (the parsing cost is the same for both). The bare client is a `DynamicItem` whose
callback only defers (ephemeral, "thinking": the same callback signoff sends, so the ratio is
signoff's own overhead). signoff's clicks each sign a different request, which then executes; the
fake Discord's channel REST calls (cards, thread posts) and every sandbox Kubernetes call are
delayed by `--slow` seconds, so the outbox and the executor are busy while clicks come in: the
acknowledgement must not depend on them. Goal (issue 4): median ratio signoff/bare ≤ 1.2.

Layout: the fake Discord and the bare client each run on their own thread and event loop; signoff
(the App with its background workers and the Discord adapter) runs on the main loop, as in
`signoff run`. One click at a time, alternating which client is clicked first.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import discord
import structlog

from adapters.loopthread import LoopThread
from bot.chats.discord import start_discord
from bot.settings import Settings
from core.domain.policy import Person
from testkit.fakes.discord import FakeDiscord, point_discord_py_at
from testkit.support import hooked_app

T = TypeVar("T")
ACTION = "rollout restart deployment/api -n prod"
FIRST_CLICKER = 700_000_000_000_000_000


class BareButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=r"bare:(?P<n>\d+)"):
    def __init__(self, n: int) -> None:
        super().__init__(discord.ui.Button(label="Approve", custom_id=f"bare:{n}"))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> BareButton:
        return cls(int(match["n"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)


class BareClient(discord.Client):
    """The reference: discord.py's defaults, one persistent button, nothing else."""

    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(BareButton)


class Bare:
    """The bare client, served on its own loop until asked to stop."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.client = BareClient()
        self.ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._stop: asyncio.Event | None = None

    async def serve(self) -> None:
        self._stop = asyncio.Event()
        await self.client.login(self.token)
        async with asyncio.TaskGroup() as group:
            group.create_task(self.client.connect())
            await self.client.wait_until_ready()
            self.ready.set_result(None)
            await self._stop.wait()
            await self.client.close()

    async def post_button(self, channel_id: str) -> int:
        view = discord.ui.View(timeout=None)
        view.add_item(BareButton(1))
        message = await self.client.get_partial_messageable(int(channel_id)).send("bare", view=view)
        return message.id

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._stop is not None
        loop.call_soon_threadsafe(self._stop.set)


async def click_and_time(fake: FakeDiscord, user: str, message_id: int | str, custom_id: str) -> float:
    """Seconds from sending INTERACTION_CREATE to the callback's arrival at the fake (both monotonic)."""
    started = time.monotonic()
    payload = await fake.click(user, message_id, custom_id)

    def callback_at() -> float | None:
        replies = fake.interaction_responses(payload["id"])
        return replies[0].at if replies else None

    arrived: float = await fake.wait_for(callback_at, 10.0)
    return arrived - started


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"median": statistics.median(ordered) * 1000, "p90": cuts[89] * 1000, "p99": cuts[98] * 1000,
            "max": ordered[-1] * 1000}


async def run(clicks: int, warmup: int, slow: float) -> int:
    total = clicks + warmup
    bare_thread = LoopThread("bench-bare-discord")
    with FakeDiscord.running_in_thread() as fake, point_discord_py_at(fake), tempfile.TemporaryDirectory() as tmp:
        clickers = [str(FIRST_CLICKER + i) for i in range(total)]
        for uid in clickers:
            fake.add_member(uid, f"clicker{uid[-4:]}")
        # Every request gets its own card: the per-channel flood control (10 new cards a minute, the
        # rest in a digest) would leave clicks with no button to press.
        policy = Path(tmp) / "signoff.toml"
        policy.write_text("[chat]\nmax_new_cards_per_minute = 1000\n")
        settings = Settings(
            SIGNOFF_DATABASE_URL=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", SIGNOFF_CLUSTER="sandbox",
            SIGNOFF_POLICY=str(policy),
            DISCORD_BOT_TOKEN=fake.token, DISCORD_API_URL=fake.api_url, DISCORD_GATEWAY_URL=fake.gateway_url,
            DISCORD_CHANNEL_ID=fake.channel_id, DISCORD_GUILD_ID=fake.guild_id,
        )
        bare = Bare(fake.token)
        # The bare client connects first, so the fake sends it every click first: any edge is the bare's.
        serving = bare_thread.submit(bare.serve())
        await asyncio.wrap_future(bare.ready)
        bare_message = await bare_thread.run(bare.post_button(fake.channel_id))
        async with hooked_app(settings) as app, start_discord(app, settings, guild_ready_timeout=0.05):
            # One request per click (the built-in policy: anyone but the requester signs, quorum 1),
            # so every click signs something and sets off an execution.
            for i in range(total):
                await app.service.request(ACTION, by=Person(name=f"requester{i}"), via="api")
            await app.settle()
            cards = {m["embeds"][0]["title"].split(" ")[1]: m["id"] for m in fake.messages() if m["embeds"]}
            fake.delay("*", r"/channels/.*", slow)
            assert app.sandbox is not None
            app.sandbox.inject("*", ".*", status=None, times=None, delay=slow)

            samples: dict[str, list[float]] = {"signoff": [], "bare discord.py": []}
            async with app.background():
                for i, clicker in enumerate(clickers):
                    request_id = f"R-{i + 1}"
                    order = ["signoff", "bare discord.py"] if i % 2 == 0 else ["bare discord.py", "signoff"]
                    for name in order:
                        if name == "signoff":
                            elapsed = await click_and_time(fake, clicker, cards[request_id],
                                                           f"signoff:approve:{request_id}")
                        else:
                            elapsed = await click_and_time(fake, clicker, bare_message, "bare:1")
                        if i >= warmup:
                            samples[name].append(elapsed)
                backlog = await app.db.read(lambda uow: uow.outbox.backlog())
            fake.clear_faults()
        bare.stop(bare_thread.loop)
        await asyncio.wrap_future(serving)
    bare_thread.stop()

    ours, reference = summary(samples["signoff"]), summary(samples["bare discord.py"])
    ratio = ours["median"] / reference["median"]
    print(f"Discord ack latency: INTERACTION_CREATE (button) → interaction callback at the fake, loopback, "
          f"{clicks} clicks each (+{warmup} warm-up), alternating order")
    print(f"fake Discord channel REST and every sandbox Kubernetes call delayed {slow * 1000:.0f} ms; "
          "every signoff click signs a request that then executes")
    print(f"{'':20} {'median':>9} {'p90':>9} {'p99':>9} {'max':>9}")
    for name, figures in (("signoff", ours), ("bare discord.py", reference)):
        print(f"{name:20} " + " ".join(f"{figures[k]:7.2f}ms" for k in ("median", "p90", "p99", "max")))
    print(f"median ratio signoff/bare = {ratio:.2f} (goal ≤ 1.2) → {'met' if ratio <= 1.2 else 'NOT met'}")
    print(f"outbox backlog when the last click was acknowledged: {backlog} messages")
    return 0 if ratio <= 1.2 else 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clicks", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--slow", type=float, default=0.2, help="seconds added to channel REST and sandbox calls")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    raise SystemExit(asyncio.run(run(args.clicks, args.warmup, args.slow)))


if __name__ == "__main__":
    main()
