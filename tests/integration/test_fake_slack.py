"""Tests of the Slack fake, driven by the real slack_sdk / slack_bolt clients it must satisfy.

Why: later adapter tests trust this fake; if it answered differently from Slack they would pass
against a Slack that does not exist.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web import WebClient
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from testkit.fakes.slack import (
    FakeSlack,
    block_actions_body,
    block_actions_payload,
    event_body,
    post_signed,
    reaction_added_event,
    sign,
    slash_command_body,
    slash_command_payload,
    thread_message_event,
)

SECRET = "test-signing-secret"
CHANNEL = "C0OPS"
ALICE = "U0ALICE"

BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "*restart* api"}},
    {
        "type": "actions",
        "block_id": "signoff_actions",
        "elements": [
            {
                "type": "button",
                "action_id": "signoff_approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "req-1",
            },
            {
                "type": "button",
                "action_id": "signoff_reject",
                "text": {"type": "plain_text", "text": "Reject"},
                "value": "req-1",
            },
        ],
    },
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as f:
        yield f


def web_client(fake: FakeSlack, **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, **kwargs)


# --------------------------------------------------------------------------- Web API


async def test_post_update_thread_roundtrip(fake: FakeSlack) -> None:
    client = web_client(fake)
    auth = await client.auth_test()
    assert auth["user_id"] == "UBOT" and auth["bot_id"] == "BBOT" and auth["team_id"] == "T0TEST"

    posted = await client.chat_postMessage(channel=CHANNEL, text="restart api?", blocks=BLOCKS)
    ts = posted["ts"]
    assert posted["channel"] == CHANNEL
    assert posted["message"]["blocks"] == BLOCKS and posted["message"]["user"] == "UBOT"

    # Text-only update keeps the old blocks, as Slack does.
    updated = await client.chat_update(channel=CHANNEL, ts=ts, text="approved")
    assert updated["ts"] == ts
    current = fake.message(CHANNEL, ts)
    assert current is not None
    assert current["text"] == "approved" and current["blocks"] == BLOCKS and "edited" in current

    new_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "done"}}]
    await client.chat_update(channel=CHANNEL, ts=ts, text="done", blocks=new_blocks)
    after = fake.message(CHANNEL, ts)
    assert after is not None and after["text"] == "done" and after["blocks"] == new_blocks

    r1 = await client.chat_postMessage(channel=CHANNEL, text="reply 1", thread_ts=ts)
    r2 = await client.chat_postMessage(channel=CHANNEL, text="reply 2", thread_ts=ts)
    assert float(ts) < float(r1["ts"]) < float(r2["ts"])
    assert [m["text"] for m in fake.thread(CHANNEL, ts)] == ["reply 1", "reply 2"]
    replies = await client.conversations_replies(channel=CHANNEL, ts=ts)
    assert [m["ts"] for m in replies["messages"]] == [ts, r1["ts"], r2["ts"]]
    assert replies["messages"][0]["reply_count"] == 2

    await client.reactions_add(channel=CHANNEL, timestamp=ts, name="white_check_mark")
    with pytest.raises(SlackApiError) as again:
        await client.reactions_add(channel=CHANNEL, timestamp=ts, name="white_check_mark")
    assert again.value.response["error"] == "already_reacted"

    eph = await client.chat_postEphemeral(channel=CHANNEL, user=ALICE, text="only you")
    assert fake.ephemerals_for(ALICE)[0]["message_ts"] == eph["message_ts"]

    user = await client.users_info(user=ALICE)
    assert user["user"]["id"] == ALICE

    await client.chat_delete(channel=CHANNEL, ts=r2["ts"])
    assert [m["ts"] for m in fake.messages(CHANNEL)] == [ts, r1["ts"]]
    assert len(fake.calls_to("chat.postMessage")) == 3
    assert fake.calls_to("chat.update")[0].args["text"] == "approved"
    assert [(c.method, c.error) for c in fake.calls if c.failed] == [("reactions.add", "already_reacted")]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
async def test_errors_look_like_slack(fake: FakeSlack) -> None:
    bad = AsyncWebClient(token="xoxb-wrong", base_url=fake.api_url)
    with pytest.raises(SlackApiError) as exc:
        await bad.chat_postMessage(channel=CHANNEL, text="x")
    assert exc.value.response.status_code == 200 and exc.value.response["error"] == "invalid_auth"
    assert fake.messages(CHANNEL) == []
    assert fake.calls[-1].failed and fake.calls[-1].error == "invalid_auth"

    client = web_client(fake)
    cases: list[tuple[Callable[[], Awaitable[Any]], str]] = [
        (lambda: client.chat_postMessage(channel="", text="x"), "channel_not_found"),
        (lambda: client.chat_postMessage(channel=CHANNEL), "no_text"),
        (lambda: client.chat_update(channel=CHANNEL, ts="1.000001", text="x"), "message_not_found"),
        (lambda: client.api_call("chat.frobnicate"), "unknown_method"),
        (lambda: client.apps_connections_open(app_token=fake.bot_token), "not_allowed_token_type"),
        (
            lambda: client.chat_postMessage(
                channel=CHANNEL, text="x", blocks=[BLOCKS[0], BLOCKS[0]]
            ),  # duplicate block_id
            "invalid_blocks",
        ),
    ]
    for call, error in cases:
        with pytest.raises(SlackApiError) as exc:
            await call()
        assert exc.value.response["error"] == error
    assert fake.messages() == []


async def test_form_encoded_body_and_token_field(fake: FakeSlack) -> None:
    async with aiohttp.ClientSession() as http:
        form = {"token": fake.bot_token, "channel": CHANNEL, "text": "hi", "blocks": json.dumps(BLOCKS)}
        async with http.post(fake.api_url + "chat.postMessage", data=form) as resp:
            body = await resp.json()
    assert body["ok"] is True
    assert fake.message(CHANNEL, body["ts"])["blocks"] == BLOCKS  # type: ignore[index]
    assert "token" not in fake.calls[-1].args


async def test_rate_limit_is_retried_and_stored_once(fake: FakeSlack) -> None:
    fake.rate_limit("chat.postMessage", retry_after=0)
    client = web_client(fake, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    resp = await client.chat_postMessage(channel=CHANNEL, text="once")
    calls = fake.calls_to("chat.postMessage")
    assert [(c.status, c.failed, c.fault) for c in calls] == [(429, True, "429"), (200, False, None)]
    assert calls[0].response == {"ok": False, "error": "ratelimited"}
    assert [m["ts"] for m in fake.messages(CHANNEL)] == [resp["ts"]]


async def test_rate_limit_without_retry_handler_surfaces_retry_after(fake: FakeSlack) -> None:
    fake.rate_limit("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as exc:
        await web_client(fake).chat_postMessage(channel=CHANNEL, text="x")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] == "7"
    assert fake.messages(CHANNEL) == []


async def test_server_error_then_success(fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=500, times=1)
    retry = AsyncServerErrorRetryHandler(
        max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(0.01)
    )
    resp = await web_client(fake, retry_handlers=[retry]).chat_postMessage(channel=CHANNEL, text="x")
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [500, 200]
    assert len(fake.messages(CHANNEL)) == 1 and resp["ok"]


async def test_committed_failure_applies_the_write(fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=500, commit=True)
    with pytest.raises(SlackApiError):
        await web_client(fake).chat_postMessage(channel=CHANNEL, text="x")
    assert len(fake.messages(CHANNEL)) == 1  # the ambiguous case: client saw 500, message exists


async def test_timeout_fault_does_not_apply_and_stops_fast(fake: FakeSlack) -> None:
    fake.timeout("chat.postMessage")  # hangs hang_seconds (35 s) unless the fake stops
    client = web_client(fake, timeout=1)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await client.chat_postMessage(channel=CHANNEL, text="x")
    assert time.monotonic() - started < 3
    assert fake.calls[-1].fault == "timeout" and fake.messages(CHANNEL) == []


async def test_delay_and_random_faults_are_reproducible(fake: FakeSlack) -> None:
    fake.delay("auth.test", 0.15)
    client = web_client(fake)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.15
    fake.clear_faults()

    async def outcomes(seed: int) -> list[int]:
        fake.fail_randomly(fraction=0.5, seed=seed, kinds=("500", "429"), methods=["api.test"])
        statuses = []
        async with aiohttp.ClientSession() as http:
            for _ in range(20):
                headers = {"Authorization": f"Bearer {fake.bot_token}"}
                async with http.post(fake.api_url + "api.test", headers=headers) as resp:
                    statuses.append(resp.status)
        return statuses

    first, second = await outcomes(7), await outcomes(7)
    assert first == second and {200, 429, 500} <= set(first)
    fake.clear_faults()
    assert (await client.auth_test())["ok"]


async def test_wait_for_is_event_driven(fake: FakeSlack) -> None:
    client = web_client(fake)
    mark = fake.mark()
    waiter = asyncio.create_task(
        fake.wait_for("chat.postMessage", lambda c: c.args.get("text") == "second", since=mark)
    )
    await asyncio.sleep(0)
    await client.chat_postMessage(channel=CHANNEL, text="first")
    assert not waiter.done()
    await client.chat_postMessage(channel=CHANNEL, text="second")
    call = await asyncio.wait_for(waiter, 1)
    assert call.args["text"] == "second"
    with pytest.raises(TimeoutError):
        await fake.wait_for("chat.delete", timeout=0.05)


async def test_response_url_replace_and_ephemeral(fake: FakeSlack) -> None:
    posted = await web_client(fake).chat_postMessage(channel=CHANNEL, text="card", blocks=BLOCKS)
    url = fake.new_response_url(CHANNEL, posted["ts"], user_id=ALICE)
    resp = await AsyncWebhookClient(url).send(text="approved", replace_original=True)
    assert resp.status_code == 200
    assert fake.message(CHANNEL, posted["ts"])["text"] == "approved"  # type: ignore[index]
    await AsyncWebhookClient(url).send(text="psst", response_type="ephemeral")
    assert fake.ephemerals_for(ALICE)[0]["text"] == "psst"
    assert [c.args.get("text") for c in fake.calls_to("response_url")] == ["approved", "psst"]
    missing = await AsyncWebhookClient(fake.base_url + "/response/nope").send(text="x")
    assert missing.status_code == 404


# --------------------------------------------------------------------------- signing and Bolt HTTP mode


def test_sign_matches_slack_sdk_verifier() -> None:
    body = slash_command_body("status", ALICE, CHANNEL, "http://x/response/1")
    headers = sign(SECRET, body)
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)


async def serve_bolt(app: AsyncApp) -> tuple[web.AppRunner, str]:
    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"


async def test_bolt_http_mode_with_signed_requests(fake: FakeSlack) -> None:
    app = AsyncApp(client=web_client(fake), signing_secret=SECRET)
    clicked: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    commands: asyncio.Queue[str] = asyncio.Queue()
    reactions: asyncio.Queue[str] = asyncio.Queue()
    replies: asyncio.Queue[str] = asyncio.Queue()

    @app.action("signoff_approve")
    async def on_approve(ack: Any, body: dict[str, Any], respond: Any, client: AsyncWebClient) -> None:
        await ack()
        await respond(text="approved", replace_original=True)
        await client.chat_postMessage(
            channel=body["channel"]["id"], thread_ts=body["message"]["ts"], text="ok"
        )
        await clicked.put(body)

    @app.command("/signoff")
    async def on_command(ack: Any, command: dict[str, Any]) -> None:
        await ack()
        await commands.put(command["text"])

    @app.event("reaction_added")
    async def on_reaction(event: dict[str, Any]) -> None:
        await reactions.put(event["reaction"])

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        await replies.put(event["thread_ts"])

    runner, url = await serve_bolt(app)
    try:
        posted = await web_client(fake).chat_postMessage(channel=CHANNEL, text="card", blocks=BLOCKS)
        ts = posted["ts"]
        body = block_actions_body(
            ALICE,
            CHANNEL,
            ts,
            "signoff_approve",
            "req-1",
            fake.new_response_url(CHANNEL, ts),
            message=fake.message(CHANNEL, ts),
        )
        status, _ = await post_signed(url, body, SECRET)
        assert status == 200
        click = await asyncio.wait_for(clicked.get(), 5)
        assert click["actions"][0]["value"] == "req-1" and click["user"]["id"] == ALICE
        assert fake.message(CHANNEL, ts)["text"] == "approved"  # type: ignore[index]
        assert [m["text"] for m in fake.thread(CHANNEL, ts)] == ["ok"]

        status, _ = await post_signed(url, slash_command_body("status", ALICE, CHANNEL, "u"), SECRET)
        assert status == 200 and await asyncio.wait_for(commands.get(), 5) == "status"

        status, _ = await post_signed(url, event_body(reaction_added_event(ALICE, "+1", CHANNEL, ts)), SECRET)
        assert status == 200 and await asyncio.wait_for(reactions.get(), 5) == "+1"
        status, _ = await post_signed(
            url, event_body(thread_message_event(ALICE, CHANNEL, "lgtm", ts)), SECRET
        )
        assert status == 200 and await asyncio.wait_for(replies.get(), 5) == ts

        bad, _ = await post_signed(url, body, "wrong-secret")
        assert bad == 401
        stale, _ = await post_signed(url, body, SECRET, timestamp=int(time.time()) - 600)
        assert stale == 401
        assert clicked.empty()
        assert len(fake.calls_to("auth.test")) == 1  # Bolt's lazy, cached auth.test
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------- Socket Mode


async def test_socket_mode_with_bolt_handler(fake: FakeSlack) -> None:
    app = AsyncApp(client=web_client(fake), signing_secret=SECRET)
    seen: asyncio.Queue[str] = asyncio.Queue()

    @app.command("/signoff")
    async def on_command(ack: Any, command: dict[str, Any]) -> None:
        await ack()
        await seen.put(command["text"])

    @app.action("signoff_approve")
    async def on_approve(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        await seen.put("click:" + body["actions"][0]["value"])

    handler = AsyncSocketModeHandler(app, fake.app_token)
    await handler.connect_async()  # type: ignore[no-untyped-call]  # untyped in slack_bolt 1.30
    try:
        assert await fake.wait_socket_connected(2) == 1
        assert (
            fake.calls_to("apps.connections.open")[0].headers["Authorization"] == f"Bearer {fake.app_token}"
        )

        payload = slash_command_payload(
            "restart deployment/api -n prod", ALICE, CHANNEL, fake.new_response_url()
        )
        envelope_id = await fake.socket_send("slash_commands", payload)
        ack = await fake.wait_ack(envelope_id, 2)
        assert ack["envelope_id"] == envelope_id
        assert await asyncio.wait_for(seen.get(), 2) == "restart deployment/api -n prod"

        # A server-side close: the client fetches a new URL and reconnects.
        assert await fake.socket_disconnect() == 1
        assert await fake.wait_socket_connected(5, count=2) == 2
        click = block_actions_payload(ALICE, CHANNEL, "1.000100", "signoff_approve", "req-9", "u")
        await fake.wait_ack(await fake.socket_send("interactive", click), 2)
        assert await asyncio.wait_for(seen.get(), 2) == "click:req-9"

        # Slack's "disconnect" message also triggers a reconnect.
        assert await fake.socket_send_disconnect() == 1
        assert await fake.wait_socket_connected(5, count=3) == 3
        assert len(fake.calls_to("apps.connections.open")) == 3
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


# --------------------------------------------------------------------------- threaded mode


def test_running_in_thread_serves_sync_clients() -> None:
    with FakeSlack.running_in_thread() as fake:
        assert threading.current_thread() is threading.main_thread()
        resp = WebClient(token=fake.bot_token, base_url=fake.api_url).chat_postMessage(
            channel=CHANNEL, text="x"
        )
        assert fake.message(CHANNEL, resp["ts"]) is not None
        call = fake.run_sync(fake.wait_for("chat.postMessage"))
        assert call.args["text"] == "x"
        req = urllib.request.Request(fake.api_url + "auth.test", data=b"token=xoxb-test", method="POST")
        with urllib.request.urlopen(req, timeout=5) as raw:
            assert json.loads(raw.read())["user_id"] == "UBOT"
        port = fake.port
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/auth.test", timeout=1)


async def test_threaded_fake_awaited_from_another_loop() -> None:
    with FakeSlack.running_in_thread() as fake:
        await web_client(fake).chat_postMessage(channel=CHANNEL, text="x")
        call = await fake.wait_for("chat.postMessage", timeout=2)
        assert call.args["channel"] == CHANNEL


async def test_views_open_takes_a_trigger_once_and_refuses_a_bad_view(fake: FakeSlack) -> None:
    from testkit.fakes.slack import view_submission_payload
    client = web_client(fake)
    view = {"type": "modal", "callback_id": "cb", "private_metadata": "{}",
            "title": {"type": "plain_text", "text": "Approve R-1"}, "submit": {"type": "plain_text", "text": "Sign"},
            "blocks": [{"type": "input", "block_id": "b", "label": {"type": "plain_text", "text": "Comment"},
                        "element": {"type": "plain_text_input", "action_id": "a", "max_length": 500}}]}
    trigger = fake.new_trigger_id("U0BOB")
    opened = await client.views_open(trigger_id=trigger, view=view)
    assert opened["view"]["id"].startswith("V") and opened["view"]["callback_id"] == "cb"
    [shown] = fake.views_for("U0BOB")
    with pytest.raises(SlackApiError) as reused:
        await client.views_open(trigger_id=trigger, view=view)
    assert reused.value.response["error"] == "trigger_exchanged"
    with pytest.raises(SlackApiError) as invalid:
        await client.views_open(trigger_id="nonsense", view=view)
    assert invalid.value.response["error"] == "invalid_trigger_id"
    with pytest.raises(SlackApiError) as bad:
        await client.views_open(trigger_id=fake.new_trigger_id("U0BOB"),
                                view={**view, "title": {"type": "plain_text", "text": "x" * 25}})
    assert bad.value.response["error"] == "invalid_arguments"
    fake.trigger_ttl = 0.0
    late = fake.new_trigger_id("U0BOB")
    await asyncio.sleep(0.01)
    with pytest.raises(SlackApiError) as expired:
        await client.views_open(trigger_id=late, view=view)
    assert expired.value.response["error"] == "expired_trigger_id"

    payload = view_submission_payload("U0BOB", shown, {"a": "looks good"})
    assert payload["type"] == "view_submission" and payload["user"]["id"] == "U0BOB"
    assert payload["view"]["state"]["values"] == {"b": {"a": {"type": "plain_text_input", "value": "looks good"}}}
