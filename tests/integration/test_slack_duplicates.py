"""Slack duplicates are recognised in the database (issue: hardening II, defect 11): the same signed slash
command posted twice makes one request, and an event Slack retries (`X-Slack-Retry-Num`) is answered once even
when the retry lands on the other replica."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from testkit.fakes.slack import FakeSlack, event_body, sign, slash_command_body, thread_message_event
from testkit.postgres import postgres_database
from testkit.support.slack import ALICE, BOB, CHANNEL, SECRET, TEAM_POLICY, SlackWorld, slack_world


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_database()


async def post(world: SlackWorld, body: bytes, *, retry: int | None = None) -> int:
    """POST `body` signed, as Slack does; a retry carries `X-Slack-Retry-Num` and `X-Slack-Retry-Reason`."""
    assert world.events_url is not None
    content_type = "application/json" if body.startswith(b"{") else "application/x-www-form-urlencoded"
    headers = {"Content-Type": content_type, **sign(SECRET, body)}
    if retry is not None:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    async with world.session.post(world.events_url, data=body, headers=headers) as response:
        return response.status


def cards(world: SlackWorld) -> list[str]:
    return [m["ts"] for m in world.fake.messages(CHANNEL) if "signoff_title" in str(m.get("blocks"))]


def pending_answers(world: SlackWorld) -> list[str]:
    return [t for t in world.thread_texts("R-1") if t.startswith("⏳ R-1 is pending")]


async def test_the_same_slash_command_posted_twice_makes_one_request(database_url: str) -> None:
    async with slack_world(database_url, policy=TEAM_POLICY) as world:
        url = world.fake.new_response_url(CHANNEL, user_id=ALICE)
        body = slash_command_body("request rollout restart deployment/api -n prod", ALICE, CHANNEL, url)
        assert await post(world, body) == 200
        assert await post(world, body) == 200  # the same signed body, replayed within Slack's 5 minutes
        await world.settle()
        assert [r.id for r in await world.app.service.pending()] == ["R-1"]
        assert len(cards(world)) == 1
        # A new command (a new trigger_id) is a new request.
        assert await world.command(ALICE, "request rollout restart deployment/web -n prod") == 200
        await world.settle()
        assert len(await world.app.service.pending()) == 2


@pytest.mark.postgres
async def test_a_command_retry_that_lands_on_the_other_replica_makes_one_request(postgres_url: str) -> None:
    async with FakeSlack() as fake, contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(slack_world(postgres_url, fake=fake, policy=TEAM_POLICY))
        second = await stack.enter_async_context(slack_world(postgres_url, fake=fake, policy=TEAM_POLICY))
        url = fake.new_response_url(CHANNEL, user_id=ALICE)
        command = slash_command_body("request rollout restart deployment/api -n prod", ALICE, CHANNEL, url)
        assert await post(first, command) == 200
        assert await post(second, command, retry=1) == 200
        for world in (first, second):
            await world.settle()
        assert [r.id for r in await first.app.service.pending()] == ["R-1"]
        assert len(cards(first)) == 1


@pytest.mark.postgres
async def test_an_event_retry_that_lands_on_the_other_replica_is_answered_once(postgres_url: str) -> None:
    async with FakeSlack() as fake, contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(slack_world(postgres_url, fake=fake, policy=TEAM_POLICY))
        second = await stack.enter_async_context(slack_world(postgres_url, fake=fake, policy=TEAM_POLICY))
        assert await first.command(ALICE, "request rollout restart deployment/api -n prod") == 200
        await first.settle()
        event = event_body(thread_message_event(BOB, CHANNEL, "status", first.card("R-1")["ts"]))
        assert await post(first, event) == 200
        assert await post(second, event, retry=1) == 200
        assert await post(second, event, retry=2) == 200
        for world in (first, second):
            await world.settle()
        assert len(pending_answers(first)) == 1, first.thread_texts("R-1")

        # A new thread reply (a new event_id) is answered again.
        assert await post(second, event_body(thread_message_event(BOB, CHANNEL, "status",
                                                                  first.card("R-1")["ts"]))) == 200
        await second.settle()
        assert len(pending_answers(first)) == 2


async def test_a_command_without_a_trigger_id_still_runs(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        url = world.fake.new_response_url(CHANNEL, user_id=ALICE)
        body = slash_command_body("help", ALICE, CHANNEL, url).replace(b"&trigger_id=", b"&trigger_idx=")
        assert await post(world, body) == 200
        await world.settle()
        assert any("Commands:" in t for t in world.private_texts(ALICE))


