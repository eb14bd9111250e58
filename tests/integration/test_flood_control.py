"""Flood control: at most `[chat] max_new_cards_per_minute` new cards per channel; the rest are listed, with
their ids and the commands to act on them, in one digest message per channel per minute. Nothing is dropped."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.alertmanager import parse_alertmanager
from core.chat.cards import Card
from core.chat.messages import MessageRef
from testkit.support import make_settings, running_app
from testkit.support.app import MovableClock
from tests.integration.test_learning import alert, payload

POLICY = """
[chat]
max_new_cards_per_minute = 3
"""


class Recorder:
    """A chat platform that records what it was asked to post."""

    platform = "rec"

    def __init__(self) -> None:
        self.cards: list[Card] = []
        self.messages: list[str] = []
        self.updates = 0

    async def post_card(self, channel: str, card: Card, **_: Any) -> MessageRef:
        self.cards.append(card)
        number = len(self.cards)
        return MessageRef(platform="rec", channel=channel, message_id=f"m{number}", thread=f"t{number}")

    async def update_card(self, ref: MessageRef, card: Card) -> None:
        self.updates += 1

    async def post_reply(self, ref: MessageRef, text: str, card: Card | None = None, **_: Any) -> MessageRef:
        return MessageRef(platform="rec", channel=ref.channel, message_id="r", thread=ref.thread)

    async def post_message(self, channel: str, text: str, card: Card | None = None, **_: Any) -> MessageRef:
        self.messages.append(text)
        return MessageRef(platform="rec", channel=channel, message_id=f"p{len(self.messages)}")


def crash(deployment: str, fingerprint: str) -> dict[str, Any]:
    return alert("KubePodCrashLooping", {"namespace": "prod", "pod": f"{deployment}-7c9f8d-p1"},
                 fingerprint=fingerprint)


async def test_cards_beyond_the_budget_go_into_one_digest_a_minute(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), policy=POLICY, clock=clock) as app:
        recorder = Recorder()
        app.dispatcher.gateways["rec"] = recorder
        app.service.default_places.clear()
        app.service.default_places["rec"] = "C1"
        # The workloads the proposals restart (a missing target is refused when the request is made).
        assert app.sandbox is not None
        names = app.sandbox.add_deployments("prod", 10, prefix="svc")
        outcomes = await app.alerts.ingest_alerts(parse_alertmanager(payload(
            *(crash(names[i], f"f{i}") for i in range(8)))))
        assert len({o.incident_id for o in outcomes}) == 8
        await app.settle()
        assert len(recorder.cards) == 3
        [digest] = recorder.messages
        held = [o for o in outcomes if o.request_id not in {c.key for c in recorder.cards}]
        assert len(held) == 5
        for outcome in held:
            assert outcome.request_id is not None
            assert f"`approve {outcome.request_id}`" in digest and f"`status {outcome.request_id}`" in digest
        # Within the minute, more held-back cards wait for the next digest; none is lost.
        more = await app.alerts.ingest_alerts(parse_alertmanager(payload(
            *(crash(names[8 + i], f"g{i}") for i in range(2)))))
        await app.settle()
        assert len(recorder.cards) == 3 and len(recorder.messages) == 1
        clock.advance(seconds=61)
        await app.settle()
        assert len(recorder.messages) == 2
        assert all(o.request_id and o.request_id in recorder.messages[1] for o in more)
        # A new minute, a new budget; every incident is stored and listed.
        assert len(await app.db.read(lambda uow: uow.incidents.list_open(100))) == 10


async def test_two_replicas_share_the_budget(database_url: str) -> None:
    async with running_app(make_settings(database_url), policy=POLICY) as one, \
            running_app(make_settings(database_url), policy=POLICY) as two:
        recorders = [Recorder(), Recorder()]
        for app, recorder in zip((one, two), recorders, strict=True):
            app.dispatcher.gateways["rec"] = recorder
            app.service.default_places.clear()
            app.service.default_places["rec"] = "C1"
        assert one.sandbox is not None and two.sandbox is not None  # the proposals' targets must exist
        a = one.sandbox.add_deployments("prod", 4, prefix="a")
        b = two.sandbox.add_deployments("prod", 4, prefix="b")
        await one.alerts.ingest_alerts(parse_alertmanager(payload(*(crash(a[i], f"a{i}") for i in range(4)))))
        await two.alerts.ingest_alerts(parse_alertmanager(payload(*(crash(b[i], f"b{i}") for i in range(4)))))
        await asyncio.gather(one.settle(), two.settle())
        assert sum(len(r.cards) for r in recorders) == 3
        # One digest per channel per minute, whichever replica sends it; the rest wait for the next minute.
        digests = [m for r in recorders for m in r.messages]
        assert len(digests) == 1 and 1 <= digests[0].count("• R-") <= 5
