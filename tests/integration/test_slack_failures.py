"""Failures on the Slack acknowledgement path go through Bolt's `app.error` (issue: house II, item 5): whatever a
listener or the global middleware raises is acknowledged (Slack neither retries nor shows its own error) and the
person is told privately that something went wrong and what to do; a form keeps its modal open with that text.

Signed requests into our real POST /slack/events (and Socket Mode envelopes), the fake Slack Web API."""

from __future__ import annotations

import pytest

from core.app.handlers import Caller
from core.chat.commands import Reply, Sign
from testkit.support.slack import ALICE, BOB, RESTART_API, TEAM_POLICY, slack_world

CHECK_THE_CARD = "check the card"


class BrokenStore:
    """The database the dedupe middleware asks is down."""

    async def first_time(self, key: str) -> bool:
        raise ConnectionError("database unreachable")


@pytest.mark.parametrize("socket_mode", [False, True], ids=["http", "socket"])
async def test_a_click_that_fails_is_acknowledged_and_told(sqlite_database_url: str, socket_mode: bool,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY, socket_mode=socket_mode) as world:
        assert await world.command(ALICE, RESTART_API) == 200
        await world.settle()

        async def broken(command: Sign, caller: Caller) -> Reply:
            raise RuntimeError("a bug on the click path")

        monkeypatch.setitem(world.app.chat.handlers._table, Sign, broken)  # a bug, injected
        assert await world.click(BOB, "approve", "R-1") == 200
        await world.settle()
        told = world.private_texts(BOB)
        assert any("internal error" in t and CHECK_THE_CARD in t for t in told), told
        assert (await world.app.service.get("R-1")).signed == 0


async def test_a_comment_form_that_fails_stays_open_saying_so(sqlite_database_url: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        assert await world.command(ALICE, RESTART_API) == 200
        await world.settle()
        assert await world.click(BOB, "approve_comment", "R-1") == 200
        await world.settle()
        [view] = world.fake.views_for(BOB)

        async def broken(command: Sign, caller: Caller) -> Reply:
            raise RuntimeError("a bug on the form path")

        monkeypatch.setitem(world.app.chat.handlers._table, Sign, broken)  # a bug, injected
        [block] = view["blocks"]
        status, answer = await world.submit_view(BOB, view, {block["element"]["action_id"]: "looks fine"})
        assert status == 200
        assert answer["response_action"] == "errors"
        assert "internal error" in answer["errors"][block["block_id"]]


async def test_a_middleware_failure_is_acknowledged_and_told(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY) as world:
        world.slack.seen = BrokenStore()
        assert await world.command(ALICE, RESTART_API) == 200
        await world.settle()
        told = world.private_texts(ALICE)
        assert any("internal error" in t for t in told), told
        assert await world.app.service.pending() == []
