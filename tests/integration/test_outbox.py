"""The outbox keeps a card's messages in order even when the card's own post is stuck with a dead
process's lease: updates and replies wait for the card instead of going out without their thread."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

from bot.chats.console import attach_console
from core.chat.messages import MessageKind
from core.domain.approvals import Place
from core.domain.policy import Person
from testkit.support import MovableClock, make_settings, running_app

CONSOLE = Place(platform="console", channel="console")


async def test_replies_wait_for_a_card_leased_by_a_dead_process(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        transcript = StringIO()
        attach_console(app, transcript)
        request = await app.service.request("rollout restart deployment/web -n prod", by=Person(name="alice"),
                                            via="console", origin=CONSOLE)
        due = await app.db.read(lambda uow: uow.outbox.due(clock.now()))
        (card,) = [m for m in due if m.kind is MessageKind.card]
        # Another process leased the card's post and died before delivering it.
        lease_until = clock.now() + timedelta(minutes=1)
        assert await app.db.write(lambda uow: uow.outbox.lease(card.id, owner="dead", until=lease_until,
                                                                now=clock.now()))
        await app.service.sign(request.id, by=Person(name="bob"), via="console")
        await app.settle()
        assert transcript.getvalue() == ""  # nothing went out ahead of the card
        assert (await app.service.get(request.id)).status == "succeeded"

        clock.advance(minutes=2)  # the dead lease lapses; the card goes first, then the rest in its thread
        await app.settle()
        text = transcript.getvalue()
        # The card, posted late, shows the request's current state; the replies follow in its thread.
        assert text.index(f"┌─ ✅ {request.id} ·") < text.index(f"↳ {request.id} │ ✅ {request.id} approved")
        assert f"↳ {request.id} │ ✅ {request.id} succeeded" in text
        assert "\n✅ " not in text  # no reply posted outside the thread

