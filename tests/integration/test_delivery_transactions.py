"""What delivering a request's chat messages costs the database (issue 17, "half the CPU"): each transaction
costs a thread hop and its fixed overhead, so the count per pass and per message must not silently grow.

A pass is one read (the survey) and one write (the claim: leases, flood budget); each message sent is booked
delivered before the card's next one goes, and lanes that finish their calls together book in one write.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bot.bootstrap import App
from core.chat.cards import Card
from core.chat.messages import MessageKind, MessageRef, NewMessage
from core.domain.approvals import Place
from core.domain.policy import Person, Policy
from testkit.support import MovableClock, make_settings
from testkit.support.app import hooked_app

ALICE, BOB = Person(name="alice"), Person(name="bob")
PLACE = Place(platform="rec", channel="C1")


class Recorder:
    """A chat platform that records its calls; `hold` keeps posts waiting until that many are under way."""

    platform = "rec"

    def __init__(self, hold: int = 0) -> None:
        self.calls: list[str] = []
        self._hold = hold
        self._all_in = asyncio.Event()

    async def post_card(self, channel: str, card: Card, **_: Any) -> MessageRef:
        self.calls.append(f"card {card.key}")
        if self._hold:
            if sum(call.startswith("card") for call in self.calls) == self._hold:
                self._all_in.set()
            await self._all_in.wait()
        return MessageRef(platform="rec", channel=channel, message_id=card.key, thread=card.key)

    async def update_card(self, ref: MessageRef, card: Card) -> None:
        self.calls.append(f"update {card.key}")

    async def post_reply(self, ref: MessageRef, text: str, card: Card | None = None, **_: Any) -> MessageRef:
        self.calls.append(f"reply {ref.message_id}")
        return MessageRef(platform="rec", channel=ref.channel, message_id="r", thread=ref.thread)

    async def post_message(self, channel: str, text: str, card: Card | None = None, **_: Any) -> MessageRef:
        self.calls.append("message")
        return MessageRef(platform="rec", channel=channel, message_id="m")


async def deliver(app: App) -> tuple[int, int, int]:
    """One pass and its calls: (messages delivered, write transactions, read transactions)."""
    writes, reads = app.db.writes, app.db.reads
    sent = await app.dispatcher.run_once()
    return sent, app.db.writes - writes, app.db.reads - reads


def recording(app: App, recorder: Recorder) -> None:
    app.dispatcher.gateways["rec"] = recorder
    app.service.default_places.clear()
    app.service.default_places["rec"] = "C1"


async def test_a_card_and_then_its_update_with_a_reply(database_url: str) -> None:
    clock = MovableClock()
    async with hooked_app(make_settings(database_url), policy=Policy(), clock=clock, min_update_interval=0.0) as app:
        recorder = Recorder()
        recording(app, recorder)
        request = await app.service.request("rollout restart deployment/web -n prod", by=ALICE, via="console",
                                            origin=PLACE)
        # The first pass also looks whether a flood digest is due (a read, then every 30 s).
        assert await deliver(app) == (1, 2, 2)  # the survey; the claim; the card's booking with its anchor
        assert await deliver(app) == (0, 0, 1)  # nothing due: a read, no write

        await app.db.write(lambda uow: uow.outbox.add([
            NewMessage(platform="rec", channel="C1", kind=MessageKind.card_update, key=request.id),
            NewMessage(platform="rec", channel="C1", kind=MessageKind.thread, key=request.id, text="note")]))
        # One lane: the update is booked before the reply goes (order per card), so a write each.
        assert await deliver(app) == (2, 3, 1)
        assert recorder.calls == [f"card {request.id}", f"update {request.id}", f"reply {request.id}"]


async def test_cards_whose_calls_end_together_are_booked_in_one_write(database_url: str) -> None:
    clock = MovableClock()
    async with hooked_app(make_settings(database_url), policy=Policy(), clock=clock, min_update_interval=0.0) as app:
        recorder = Recorder(hold=5)
        recording(app, recorder)
        assert app.sandbox is not None
        names = app.sandbox.add_deployments("prod", 5, prefix="svc")
        for name in names:
            await app.service.request(f"rollout restart deployment/{name} -n prod", by=ALICE, via="console",
                                      origin=PLACE)
        await deliver(app)  # (the first pass's digest look)
        assert len(recorder.calls) == 5
        names = app.sandbox.add_deployments("prod", 5, prefix="web")
        for name in names:
            await app.service.request(f"rollout restart deployment/{name} -n prod", by=ALICE, via="console",
                                      origin=PLACE)
        recorder._all_in.clear()
        recorder.calls.clear()
        # Five lanes' posts return at once: the first lane's booking goes alone, the four that arrive while it is
        # being written go in one write after it (they were five writes, one per card).
        assert await deliver(app) == (5, 3, 1)
        assert await app.db.read(lambda uow: uow.outbox.backlog()) == 0


async def test_a_card_update_held_back_by_the_pace_costs_no_write_when_no_other_process_delivers(
        database_url: str) -> None:
    clock = MovableClock()
    async with hooked_app(make_settings(database_url), policy=Policy(), clock=clock, min_update_interval=20.0) as app:
        recorder = Recorder()
        recording(app, recorder)
        request = await app.service.request("rollout restart deployment/web -n prod", by=ALICE, via="console",
                                            origin=PLACE)
        await deliver(app)

        def update(uow: Any) -> None:
            uow.outbox.add([NewMessage(platform="rec", channel="C1", kind=MessageKind.card_update, key=request.id)])

        await app.db.write(update)
        assert await deliver(app) == (1, 2, 1)
        await app.db.write(update)
        # Too soon after the last update: SQLite serves one process, which remembers; on PostgreSQL another
        # replica could send it, so the row is postponed (a write).
        assert await deliver(app) == (0, 0 if app.db.sole_worker else 1, 1)
        for _ in range(3):
            clock.advance(seconds=5)  # (less than the 30 s after which a pass looks for a due digest)
            assert await deliver(app) == (0, 0, 1)  # still too soon: looked at (SQLite) or not due (PostgreSQL)
        clock.advance(seconds=6)
        assert await deliver(app) == (1, 2, 1)
        assert recorder.calls == [f"card {request.id}", f"update {request.id}", f"update {request.id}"]
        assert await app.db.read(lambda uow: uow.outbox.backlog()) == 0


async def until(condition: Any) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.005)


async def test_a_pass_woken_by_queued_messages_surveys_inside_its_claim(database_url: str) -> None:
    """Delivering in the background, a pass woken because messages were queued is one write (survey and claim);
    a lane that ends wakes no pass unless a message of its card waited for it."""
    clock = MovableClock()
    async with hooked_app(make_settings(database_url), policy=Policy(), clock=clock, min_update_interval=0.0) as app:
        recorder = Recorder()
        recording(app, recorder)
        held, started = asyncio.Event(), []
        replies = recorder.post_reply

        async def held_reply(ref: MessageRef, text: str, card: Card | None = None, **_: Any) -> MessageRef:
            started.append(text)
            if text == "first":
                await held.wait()
            return await replies(ref, text, card)

        recorder.post_reply = held_reply  # type: ignore[method-assign]
        await app.db.write(lambda uow: uow.outbox.save_anchor("R-1", MessageRef(platform="rec", channel="C1",
                                                                                message_id="c", thread="c")))
        assert list(app.dispatcher.gateways) == ["rec"]
        reads = app.db.reads
        running = asyncio.create_task(app.dispatcher.run(interval=3600))  # no polling: only wake-ups
        try:
            await until(lambda: app.db.reads == reads + 2)  # the first pass: the digest look and an empty survey
            await asyncio.sleep(0.05)
            writes, reads = app.db.writes, app.db.reads

            def message(text: str, key: str | None = None) -> NewMessage:
                kind = MessageKind.thread if key else MessageKind.channel
                return NewMessage(platform="rec", channel="C1", kind=kind, key=key, text=text)

            await app.db.write(lambda uow: uow.outbox.add([message("hello")]))
            await until(lambda: app.dispatcher.delivered == 1)
            await asyncio.sleep(0.05)  # (no pass follows the lane's end)
            assert (app.db.writes - writes, app.db.reads - reads) == (3, 0)  # the add; survey + claim; booking

            await app.db.write(lambda uow: uow.outbox.add([message("first", "R-1")]))
            await until(lambda: started == ["first"])
            await app.db.write(lambda uow: uow.outbox.add([message("second", "R-1")]))
            await asyncio.sleep(0.05)  # its pass leaves it behind the first, still on its way
            assert started == ["first"]
            held.set()  # the first's lane ends and wakes the pass that sends the second
            await until(lambda: app.dispatcher.delivered == 3)
            assert started == ["first", "second"]
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


@contextlib.contextmanager
def anchor_reads() -> Any:
    """Counts the statements that read a card's anchor, on every engine of this process."""
    import sqlalchemy as sa

    seen: list[str] = []

    def look(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM anchors" in statement:
            seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", look)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", look)


async def test_a_card_s_anchor_is_read_once_however_often_it_is_updated(database_url: str) -> None:
    """An anchor never changes once written, so passes read it from the database once: under load a card with a
    paced update was looked up on every pass (about 26 anchor reads per request)."""
    clock = MovableClock()
    async with hooked_app(make_settings(database_url), policy=Policy(), clock=clock, min_update_interval=20.0) as app:
        recorder = Recorder()
        recording(app, recorder)
        request = await app.service.request("rollout restart deployment/web -n prod", by=ALICE, via="console",
                                            origin=PLACE)
        await deliver(app)  # the card

        def update(uow: Any) -> None:
            uow.outbox.add([NewMessage(platform="rec", channel="C1", kind=MessageKind.card_update, key=request.id),
                            NewMessage(platform="rec", channel="C1", kind=MessageKind.thread, key=request.id,
                                       text="note")])

        with anchor_reads() as reads:
            for _ in range(4):
                await app.db.write(update)
                await deliver(app)  # an update when the pace allows, and the reply
                for _ in range(3):
                    clock.advance(seconds=7)
                    await deliver(app)  # the paced update, once the pace allows
        assert recorder.calls.count(f"update {request.id}") == 4
        assert recorder.calls.count(f"reply {request.id}") == 4
        assert len(reads) == 1
        assert await app.db.read(lambda uow: uow.outbox.backlog()) == 0


async def test_a_paced_card_update_is_not_read_again_while_it_waits(database_url: str) -> None:
    """Under load most due rows were paced card updates, read and put back on every pass (~74 of 84). On SQLite
    the process that paces them leaves them out of its reads until their time; PostgreSQL postpones them."""
    clock = MovableClock()
    async with hooked_app(make_settings(database_url), policy=Policy(), clock=clock, min_update_interval=20.0) as app:
        recorder = Recorder()
        recording(app, recorder)
        request = await app.service.request("rollout restart deployment/web -n prod", by=ALICE, via="console",
                                            origin=PLACE)
        await deliver(app)

        def update_and_reply(uow: Any) -> None:
            uow.outbox.add([NewMessage(platform="rec", channel="C1", kind=MessageKind.card_update, key=request.id),
                            NewMessage(platform="rec", channel="C1", kind=MessageKind.thread, key=request.id,
                                       text="note")])

        await app.db.write(update_and_reply)
        await deliver(app)  # the first update goes: the card is paced from now on
        await app.db.write(update_and_reply)
        surveyed = app.dispatcher.surveyed
        await deliver(app)  # the reply passes the paced update
        assert recorder.calls[-1] == f"reply {request.id}"
        for _ in range(3):
            clock.advance(seconds=5)
            await deliver(app)
        assert app.dispatcher.surveyed - surveyed == (1 if app.db.sole_worker else 2)  # (the postponed: not due)
        clock.advance(seconds=6)
        assert await deliver(app) == (1, 2, 1)  # its time: read and sent
        assert recorder.calls[-1] == f"update {request.id}"
        assert await app.db.read(lambda uow: uow.outbox.backlog()) == 0
