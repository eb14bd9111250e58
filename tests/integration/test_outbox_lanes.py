"""Each chat platform delivers in its own lane (issue 18 item 7): forty Slack messages whose calls hang must
not hold back a console message, as they did when every platform shared one pass of 8 slots.

Slack is the real adapter (slack_sdk over loopback) against the fake Slack, told to hold every
chat.postMessage until it stops; the console is the console's own outbox gateway. Nothing here is timed:
the console message must go out while every Slack post is still hanging.
"""

from __future__ import annotations

import asyncio
from io import StringIO
from typing import Any

import sqlalchemy as sa

from bot.chats.console import attach_console
from bot.chats.slack import attach_slack
from bot.http import build_http_app
from core.chat.messages import MessageKind, MessageRef, NewMessage
from testkit.fakes.slack import FakeSlack
from testkit.support import make_settings, running_app

CHANNEL = "C0OPS"
FOREVER = 3600.0  # longer than any test: the fake ends these sleeps when it stops


def leased(uow: Any, text: str) -> bool:
    return bool(uow.connection.execute(
        sa.text("SELECT count(*) FROM outbox WHERE body LIKE :text AND lease_owner IS NOT NULL"),
        {"text": f"%{text}%"}).scalar_one())


def leased_slack(uow: Any) -> int:
    return int(uow.connection.exec_driver_sql(
        "SELECT count(*) FROM outbox WHERE platform = 'slack' AND lease_owner IS NOT NULL").scalar_one())


async def test_a_platform_whose_calls_hang_does_not_hold_back_another(database_url: str) -> None:
    async with FakeSlack() as fake:
        fake.delay("chat.postMessage", FOREVER)
        settings = make_settings(database_url, SLACK_BOT_TOKEN=fake.bot_token, SLACK_API_URL=fake.api_url,
                                 SLACK_CHANNEL=CHANNEL, SLACK_SIGNING_SECRET="lanes-signing-secret",
                                 SIGNOFF_CHAT_TIMEOUT=FOREVER)
        async with running_app(settings) as app:
            transcript = StringIO()
            attach_console(app, transcript)
            attach_slack(app, build_http_app(app))  # HTTP mode; nothing is sent to it here
            await app.db.write(lambda uow: uow.outbox.add([
                NewMessage(platform="slack", channel=CHANNEL, kind=MessageKind.channel, text=f"slow {i}")
                for i in range(40)]))
            async with app.background():
                app.signals.outbox.set()
                async with asyncio.timeout(30):
                    while not await app.db.read(leased_slack):  # Slack's posts are under way, and hang
                        await asyncio.sleep(0.01)
                await app.db.write(lambda uow: uow.outbox.add([
                    NewMessage(platform="console", channel="console", kind=MessageKind.channel,
                               text="console goes out")]))
                app.signals.outbox.set()
                async with asyncio.timeout(30):
                    while "console goes out" not in transcript.getvalue():
                        await asyncio.sleep(0.01)
                    while await app.db.read(lambda uow: uow.outbox.backlog()) != 40:  # and is booked
                        await asyncio.sleep(0.01)
                # ... while every Slack post is still hanging: none has been answered.
                assert not [c for c in fake.calls_to("chat.postMessage") if not c.failed]


async def test_a_cards_next_reply_waits_for_the_one_on_its_way(database_url: str) -> None:
    """A platform's next pass does not wait for the previous pass's calls, but a card whose reply is still on
    its way is left out of it: its next reply goes after that one, while other cards' messages go meanwhile."""
    async with FakeSlack() as fake:
        fake.delay("chat.postMessage", FOREVER)
        settings = make_settings(database_url, SLACK_BOT_TOKEN=fake.bot_token, SLACK_API_URL=fake.api_url,
                                 SLACK_CHANNEL=CHANNEL, SLACK_SIGNING_SECRET="lanes-signing-secret",
                                 SIGNOFF_CHAT_TIMEOUT=FOREVER)
        async with running_app(settings) as app:
            attach_slack(app, build_http_app(app))
            card = MessageRef(platform="slack", channel=CHANNEL, message_id="1.0", thread="1.0")

            def reply(text: str, key: str | None = "R-1") -> list[NewMessage]:
                kind = MessageKind.thread if key else MessageKind.channel
                return [NewMessage(platform="slack", channel=CHANNEL, kind=kind, key=key, text=text)]

            await app.db.write(lambda uow: uow.outbox.save_anchor("R-1", card))
            await app.db.write(lambda uow: uow.outbox.add(reply("first reply")))
            async with app.background():
                app.signals.outbox.set()
                async with asyncio.timeout(30):
                    while not await app.db.read(lambda uow: leased(uow, "first reply")):
                        await asyncio.sleep(0.01)
                await app.db.write(lambda uow: uow.outbox.add(reply("second reply") + reply("elsewhere", None)))
                app.signals.outbox.set()
                async with asyncio.timeout(30):  # a later pass took the other message, with the first still hanging
                    while not await app.db.read(lambda uow: leased(uow, "elsewhere")):
                        await asyncio.sleep(0.01)
                assert not await app.db.read(lambda uow: leased(uow, "second reply"))
                assert not [c for c in fake.calls_to("chat.postMessage") if not c.failed]
