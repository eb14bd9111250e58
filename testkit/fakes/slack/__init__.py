"""A loopback fake of Slack: Web API, response_url, Socket Mode, plus signed request builders.

Why: signoff's Slack adapter must be tested through Slack's real wire protocol (docs/design.md §5), with
unmodified slack_sdk / slack_bolt clients on the other end, so the fake answers the way Slack does
(HTTP 200 with ``ok: false`` for API errors, 429 + ``Retry-After`` for rate limits, ...) and keeps the
state a test needs to assert on (messages after updates, threads, reactions, ephemerals).

Wiring real clients to it:

* Web API: ``AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)`` and pass that client as
  ``AsyncApp(client=..., signing_secret=...)``. slack_sdk has no environment variable for the base URL.
* Socket Mode: ``AsyncSocketModeHandler(app, app_token=fake.app_token)`` (slack_bolt.adapter.socket_mode
  .aiohttp) builds a ``slack_sdk.socket_mode.aiohttp.SocketModeClient(web_client=app.client)``; neither
  takes a URL. The client calls ``apps.connections.open`` with the ``xapp-`` token through *its web
  client's* ``base_url`` (override with ``web_client=``), and the fake answers with
  ``ws://127.0.0.1:PORT/socket-mode?ticket=...``. Both must be constructed inside a running event loop
  (the client creates an aiohttp session and a task in ``__init__``). ``connect_async()`` returns once the
  websocket is open; ``close_async()`` stops it. On a server close frame or a ``disconnect`` message the
  client fetches a fresh URL and reconnects.
* HTTP mode (Bolt on ``POST /slack/events``): build bodies with ``slash_command_body`` /
  ``block_actions_body`` / ``event_body`` and send them with ``post_signed``.
* A bot running as a subprocess: ``with FakeSlack.running_in_thread() as fake:`` and hand
  ``fake.api_url`` to it; drive the fake from the test thread with ``fake.run_sync(coro)`` (its async
  helpers also work when awaited from another event loop).

The package, one job per module: `fake` (FakeSlack: its state, seeding and reading it), `web_api` (the Web
API methods and their HTTP handling), `socket_mode` (the Socket Mode websocket), `response_url` (trigger ids
and response URLs), `faults` (failure injection), `messages` (the message store), `requests` (signed
request bodies as Slack sends them to an app, and `post_signed`), `records` (constants and the calls tests
read) and `validation` (reading a client's arguments and Slack's checks on them).
"""

from __future__ import annotations

from testkit.fakes.slack.fake import FakeSlack
from testkit.fakes.slack.records import SlackCall
from testkit.fakes.slack.requests import (
    block_actions_body,
    block_actions_payload,
    event_body,
    event_callback,
    message_event,
    post_signed,
    reaction_added_event,
    sign,
    slash_command_body,
    slash_command_payload,
    thread_message_event,
    view_submission_body,
    view_submission_payload,
)

__all__ = [
    "FakeSlack",
    "SlackCall",
    "block_actions_body",
    "block_actions_payload",
    "event_body",
    "event_callback",
    "message_event",
    "post_signed",
    "reaction_added_event",
    "sign",
    "slash_command_body",
    "slash_command_payload",
    "thread_message_event",
    "view_submission_body",
    "view_submission_payload",
]
