"""Shared set-up for the Slack tests.

`slack_world()` builds the App with `running_app`, attaches Slack with the same
`attach_slack` that `run_service` uses, serves the real aiohttp application on an
ephemeral port and drives it with correctly signed requests (HTTP mode) or websocket
envelopes (Socket Mode). Progress is made deterministic with `settle()`: wait for the
adapter's jobs, then run executions and outbox deliveries to completion.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapters.slack import EVENTS_PATH, SlackAdapter
from bot.bootstrap import App
from bot.chats.slack import attach_slack
from bot.http import HttpServer, build_http_app
from testkit.fakes.slack import (
    FakeSlack,
    block_actions_body,
    block_actions_payload,
    event_body,
    post_signed,
    slash_command_body,
    slash_command_payload,
    view_submission_body,
    view_submission_payload,
)
from testkit.support.app import make_settings, running_app
from testkit.support.policy import team_policy

SECRET = "test-signing-secret"
CHANNEL = "C0OPS"
ALICE, BOB, CAROL, MALLORY = "U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY"

TEAM_POLICY = team_policy(slack={"alice": ALICE, "bob": BOB, "carol": CAROL, "mallory": MALLORY})

RESTART_API = 'request rollout restart deployment/api -n prod risk=high reason="api is slow"'

JSON = dict[str, Any]


@dataclass
class SlackWorld:
    app: App
    fake: FakeSlack
    slack: SlackAdapter
    base_url: str
    events_url: str | None
    session: aiohttp.ClientSession
    socket_mode: bool = False

    # ---------------------------------------------------------------- driving

    async def command(self, user: str, text: str, channel: str = CHANNEL) -> int:
        response_url = self.fake.new_response_url(channel, user_id=user)
        if self.socket_mode:
            envelope = await self.fake.socket_send(
                "slash_commands", slash_command_payload(text, user, channel, response_url))
            await self.fake.wait_ack(envelope)
            return 200
        assert self.events_url is not None
        status, _ = await post_signed(self.events_url, slash_command_body(text, user, channel, response_url),
                                      SECRET, session=self.session)
        return status

    async def click(self, user: str, action: str, request_id: str, channel: str = CHANNEL) -> int:
        """A click on the request's card: `action_id` signoff_<action>, value the request id."""
        return await self.click_button(user, self.card(request_id, channel), f"signoff_{action}", request_id,
                                       channel)

    async def click_button(self, user: str, message: JSON, action_id: str, value: str,
                           channel: str = CHANNEL) -> int:
        ts = message["ts"]
        response_url = self.fake.new_response_url(channel, ts, user_id=user)
        trigger = self.fake.new_trigger_id(user)
        if self.socket_mode:
            payload = block_actions_payload(user, channel, ts, action_id, value, response_url, message=message,
                                            trigger_id=trigger)
            envelope = await self.fake.socket_send("interactive", payload)
            await self.fake.wait_ack(envelope)
            return 200
        assert self.events_url is not None
        body = block_actions_body(user, channel, ts, action_id, value, response_url, message=message,
                                  trigger_id=trigger)
        status, _ = await post_signed(self.events_url, body, SECRET, session=self.session)
        return status

    async def submit_view(self, user: str, view: JSON, values: dict[str, str]) -> tuple[int, JSON]:
        """Submit a modal views.open showed: the HTTP status and what signoff answered (`{}`: it closes)."""
        if self.socket_mode:
            envelope = await self.fake.socket_send("interactive", view_submission_payload(user, view, values))
            ack = await self.fake.wait_ack(envelope)
            return 200, dict(ack.get("payload") or {})
        assert self.events_url is not None
        status, text = await post_signed(self.events_url, view_submission_body(user, view, values), SECRET,
                                         session=self.session)
        return status, (json.loads(text) if text.strip() else {})

    async def event(self, event: JSON) -> int:
        if self.socket_mode:
            envelope = await self.fake.socket_send("events_api", event)
            await self.fake.wait_ack(envelope)
            return 200
        assert self.events_url is not None
        status, _ = await post_signed(self.events_url, event_body(event), SECRET, session=self.session)
        return status

    async def settle(self) -> None:
        """Jobs acked to Slack, then executions and outbox deliveries, until nothing moves."""
        for _ in range(20):
            await self.slack.jobs.idle()
            await self.app.settle()
            if self.slack.jobs.in_flight == 0:
                return

    # ---------------------------------------------------------------- reading what Slack shows

    def card(self, request_id: str, channel: str = CHANNEL) -> JSON:
        for message in self.fake.messages(channel):
            for block in message.get("blocks") or []:
                if block.get("block_id") == "signoff_title" and f" {request_id} ·" in block["text"]["text"]:
                    return message
        raise AssertionError(f"no card for {request_id} in {channel}: {self.fake.messages(channel)}")

    def thread_texts(self, request_id: str, channel: str = CHANNEL) -> list[str]:
        return [m.get("text", "") for m in self.fake.thread(channel, self.card(request_id, channel)["ts"])]

    def private_texts(self, user: str) -> list[str]:
        return [str(e.get("text") or "") for e in self.fake.ephemerals_for(user)]

    def real_writes(self, resource: str) -> list[Any]:
        """Non-dry-run writes the sandbox API server received for `resource` (e.g. deployments/api)."""
        return [r for r in self.app.sandbox.requests
                if r[0] in ("PATCH", "PUT", "DELETE", "POST") and resource in r[1] and "dryRun" not in str(r[2])]


def buttons(message: JSON) -> list[JSON]:
    return [el for block in message.get("blocks") or [] if block["type"] == "actions" for el in block["elements"]]


def card_text(message: JSON) -> str:
    """Everything the card shows, as one string (for `in` checks)."""
    return json.dumps(message.get("blocks") or [], ensure_ascii=False)


@contextlib.asynccontextmanager
async def slack_world(
    database_url: str, *, fake: FakeSlack | None = None, socket_mode: bool = False, policy: str | None = None,
    clock: Any = None, api_token: str | None = None,
) -> AsyncIterator[SlackWorld]:
    """One signoff process talking to `fake` (a fresh one unless given, e.g. to survive a restart)."""
    async with contextlib.AsyncExitStack() as stack:
        if fake is None:
            fake = await stack.enter_async_context(FakeSlack())
        env: dict[str, str] = {"SLACK_BOT_TOKEN": fake.bot_token, "SLACK_API_URL": fake.api_url,
                               "SLACK_CHANNEL": CHANNEL}
        if socket_mode:
            env["SLACK_APP_TOKEN"] = fake.app_token
        else:
            env["SLACK_SIGNING_SECRET"] = SECRET
        if api_token is not None:
            env["SIGNOFF_API_TOKEN"] = api_token
        settings = make_settings(database_url, **env)
        app = await stack.enter_async_context(running_app(settings, policy=policy, clock=clock))
        http = build_http_app(app)
        slack = attach_slack(app, http)
        server = HttpServer(http, "127.0.0.1", 0)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        await stack.enter_async_context(slack.running())
        await server.start()
        stack.push_async_callback(server.stop)
        if socket_mode:
            await fake.wait_socket_connected()
        base_url = f"http://127.0.0.1:{server.port}"
        events_url = None if socket_mode else base_url + EVENTS_PATH
        yield SlackWorld(app=app, fake=fake, slack=slack, base_url=base_url, events_url=events_url,
                         session=session, socket_mode=socket_mode)
