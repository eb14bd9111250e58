"""Rate limits that hold across replicas (issue: hardening, defect 11): per person, configurable as
`[requests] max_per_person_per_minute`, kept in the database; refused clicks are limited too, so a stream of
them cannot flood a thread and the timeline."""

from __future__ import annotations

from core.chat.commands import ChatContext
from core.domain.approvals import Place
from core.domain.events import EventType
from core.domain.policy import Person
from core.errors import RateLimited
from testkit.support import MovableClock, make_settings, running_app

POLICY = """
[requests]
max_per_person_per_minute = 3
"""
CONSOLE = Place(platform="console", channel="console")


def ctx(name: str) -> ChatContext:
    return ChatContext(platform="console", account=name, place=CONSOLE)


async def test_the_limit_comes_from_the_policy_and_says_when_to_retry(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), policy=POLICY, clock=clock) as app:
        replies = [await app.chat.handle("request cordon node-3", ctx("alice")) for _ in range(4)]
        assert all(r.ok for r in replies[:3])
        assert not replies[3].ok and "3 requests in the last minute" in replies[3].text
        try:
            await app.service.request("cordon node-3", by=Person(name="alice"), via="console")
        except RateLimited as exc:
            assert 1 <= exc.retry_after_s <= 60
        else:
            raise AssertionError("the fifth request was not refused")
        assert (await app.chat.handle("request cordon node-3", ctx("bob"))).ok  # someone else is not affected
        clock.advance(seconds=61)
        assert (await app.chat.handle("request cordon node-3", ctx("alice"))).ok


async def test_two_replicas_share_one_limit(database_url: str) -> None:
    # Two app graphs on one database are two replicas: the count lives in the database, not in a process.
    async with running_app(make_settings(database_url), policy=POLICY) as one, \
            running_app(make_settings(database_url), policy=POLICY) as two:
        assert (await one.chat.handle("request cordon node-3", ctx("alice"))).ok
        assert (await two.chat.handle("request cordon node-3", ctx("alice"))).ok
        assert (await one.chat.handle("request cordon node-3", ctx("alice"))).ok
        assert not (await two.chat.handle("request cordon node-3", ctx("alice"))).ok


async def test_a_stream_of_refused_clicks_does_not_flood_the_thread(database_url: str) -> None:
    async with running_app(make_settings(database_url), policy=POLICY) as app:
        reply = await app.chat.handle("request cordon node-3", ctx("alice"))
        request_id = reply.request_id
        assert request_id is not None
        # alice may not sign her own request; she clicks 30 times.
        replies = [await app.chat.handle(f"approve {request_id}", ctx("alice")) for _ in range(30)]
        assert all(not r.ok and "You asked for" in r.text for r in replies)  # each click still gets its answer
        refusals = [e for e in await app.service.timeline(request_id) if e.type is EventType.refused]
        assert 1 <= len(refusals) <= 6
        thread = await app.db.read(lambda uow: [m for m in uow.outbox.due(app.clock.now(), 1000)
                                                if m.kind == "thread" and "tried to" in m.text])
        assert len(thread) <= 6
