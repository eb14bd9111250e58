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
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import itertools
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp import web

from testkit.support.loopback import Fault, LoopbackServer

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

T = TypeVar("T")
JSONDict = dict[str, Any]
SocketEnvelopeType = Literal["slash_commands", "interactive", "events_api"]
FaultKind = Literal["500", "429", "timeout"]

DEFAULT_TEAM_ID = "T0TEST"
DEFAULT_TEAM_DOMAIN = "signoff-test"
DEFAULT_APP_ID = "A0TEST"
DEFAULT_BOT_USER_ID = "UBOT"
DEFAULT_VERIFICATION_TOKEN = "verification-token"

# Methods that take the app-level (xapp-) token; every other method takes the bot token.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
_HTTP_ERROR_NAMES = {
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "request_timeout",
}
_DELAY = "delay"
_USER_ID_RE = re.compile(r"^[UW][A-Z0-9]+$")


@dataclass
class SlackCall:
    """One request the fake answered; kept for every request so tests can assert on retries too."""

    method: str
    args: JSONDict
    headers: dict[str, str]
    at: float  # time.monotonic() when the request arrived
    path: str = ""
    status: int = 200
    failed: bool = False  # answered with a non-200 status or ``ok: false``
    error: str | None = None
    fault: str | None = None  # injected fault that answered it: "500", "429", "timeout", "error"
    response: JSONDict | None = None


@dataclass
class _ResponseUrl:
    channel: str | None
    message_ts: str | None
    user_id: str | None


@dataclass
class _SocketState:
    connections: list[web.WebSocketResponse] = field(default_factory=list)
    connect_count: int = 0
    tickets: set[str] = field(default_factory=set)
    sent: list[JSONDict] = field(default_factory=list)
    received: list[JSONDict] = field(default_factory=list)
    acks: dict[str, JSONDict] = field(default_factory=dict)


class _ApiError(Exception):
    """Raised inside a method implementation to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class FakeSlack(LoopbackServer):
    """Slack on 127.0.0.1: real HTTP and websocket endpoints so the real SDKs can be pointed at it."""

    thread_name = "fake-slack"

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",
        app_token: str = "xapp-test",
        bot_user_id: str = DEFAULT_BOT_USER_ID,
        bot_id: str = "BBOT",
        team_id: str = DEFAULT_TEAM_ID,
        team_domain: str = DEFAULT_TEAM_DOMAIN,
        app_id: str = DEFAULT_APP_ID,
        host: str = "127.0.0.1",
        port: int = 0,
        hang_seconds: float = 35.0,
        ts_base: int = 1764200000,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.team_domain = team_domain
        self.app_id = app_id
        super().__init__(host, port)
        # A "timeout" fault sleeps this long: longer than slack_sdk's default 30 s client timeout.
        self.hang_seconds = hang_seconds

        self.calls: list[SlackCall] = []
        self.ephemerals: list[JSONDict] = []
        self.users: dict[str, JSONDict] = {}
        self._messages: dict[str, list[JSONDict]] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._socket = _SocketState()
        self._ts_base = ts_base
        self._ts_counter = itertools.count(1)
        # Modals: what views.open showed, and the trigger_ids clicks carried (one use each, like Slack's).
        self.views: list[JSONDict] = []
        self._triggers: dict[str, tuple[str | None, float]] = {}  # trigger_id → (user, issued at)
        self._used_triggers: set[str] = set()
        self.trigger_ttl: float | None = None  # Slack's is 3 s; None: no expiry (tests never race a clock)
        self.add_user(bot_user_id, "signoff", is_bot=True)

    # ------------------------------------------------------------------ lifecycle

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/{method}", self._handle_api)
        app.router.add_get("/api/{method}", self._handle_api)
        app.router.add_post("/response/{rid}", self._handle_response_url)
        app.router.add_get("/socket-mode", self._handle_socket)

    async def _closing(self) -> None:
        with self._lock:
            sockets = list(self._socket.connections)
        for ws in sockets:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY), 1.0)

    def _recent(self) -> list[str]:
        return [c.method for c in self.calls]

    @property
    def api_url(self) -> str:
        """Web API base URL, with the trailing slash slack_sdk's ``base_url`` expects."""
        return f"{self.base_url}/api/"

    @property
    def socket_url(self) -> str:
        return f"ws://{self.host}:{self.port}/socket-mode"

    # ------------------------------------------------------------------ seeding and reading state

    def next_ts(self) -> str:
        """A unique, increasing Slack timestamp such as ``1764200000.000100``."""
        micros = next(self._ts_counter) * 100
        return f"{self._ts_base + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def add_user(
        self, user_id: str, name: str, *, real_name: str | None = None, is_bot: bool = False
    ) -> JSONDict:
        """Register a user for users.info (unregistered ``U…`` ids are synthesized)."""
        user = self._user_record(user_id, name, real_name=real_name, is_bot=is_bot)
        with self._lock:
            self.users[user_id] = user
        return copy.deepcopy(user)

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str,
        thread_ts: str | None = None,
        ts: str | None = None,
        blocks: list[JSONDict] | None = None,
    ) -> JSONDict:
        """Store a human's message (e.g. a thread reply) so conversations.replies returns it."""
        msg: JSONDict = {
            "type": "message",
            "user": user,
            "text": text,
            "ts": ts or self.next_ts(),
            "team": self.team_id,
        }
        if blocks is not None:
            msg["blocks"] = blocks
        with self._lock:
            self._store_message(channel, msg, thread_ts)
        self._bump()
        return copy.deepcopy(msg)

    def calls_to(self, method: str) -> list[SlackCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def mark(self) -> int:
        """Index of the next call to be recorded: pass it as ``wait_for(..., since=mark)``."""
        with self._lock:
            return len(self.calls)

    def messages(self, channel: str | None = None) -> list[JSONDict]:
        """Current messages (after updates, without deleted ones), oldest first."""
        with self._lock:
            if channel is None:
                found = [m for msgs in self._messages.values() for m in msgs]
            else:
                found = list(self._messages.get(channel, []))
            return copy.deepcopy(sorted(found, key=lambda m: _ts_key(m["ts"])))

    def message(self, channel: str, ts: str) -> JSONDict | None:
        with self._lock:
            found = self._find(channel, ts)
            return copy.deepcopy(found) if found is not None else None

    def thread(self, channel: str, ts: str) -> list[JSONDict]:
        """The replies in the thread under ``ts`` (the parent itself is not included)."""
        with self._lock:
            replies = [
                m for m in self._messages.get(channel, []) if m.get("thread_ts") == ts and m["ts"] != ts
            ]
            return copy.deepcopy(sorted(replies, key=lambda m: _ts_key(m["ts"])))

    def ephemerals_for(self, user: str) -> list[JSONDict]:
        with self._lock:
            return copy.deepcopy([e for e in self.ephemerals if e.get("user") == user])

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[SlackCall], bool] | None = None,
        timeout: float = 5.0,
        *,
        since: int = 0,
    ) -> SlackCall:
        """The first call to ``method`` (at index ≥ ``since``) matching ``predicate``, waiting if needed."""

        def check() -> SlackCall | None:
            for call in self.calls[since:]:
                if call.method == method and (predicate is None or predicate(call)):
                    return call
            return None

        return await self._on_own_loop(self._wait_until(check, timeout, f"a {method} call"))

    # ------------------------------------------------------------------ fault injection

    def fail(
        self,
        method: str,
        status: int = 500,
        times: int = 1,
        *,
        error: str | None = None,
        commit: bool = False,
    ) -> None:
        """Answer the next ``times`` calls with ``status`` (or, with status 200, ``ok: false, error``).

        ``commit=True`` applies the call before answering with the failure: Slack's ambiguous case
        where the write landed but the client saw an error. ``method`` may be ``"*"``.
        """
        name = error or (_HTTP_ERROR_NAMES.get(status, f"http_{status}") if status != 200 else "fatal_error")
        self.faults.add(Fault(method, None, "status", times, status=status, error=name, commit=commit))

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer 429 + ``Retry-After`` (slack_sdk sleeps ``retry_after`` + up to 1 s before retrying)."""
        self.faults.add(Fault(method, None, "429", times, status=429, error="ratelimited", retry_after=retry_after))

    def timeout(self, method: str, seconds: float | None = None, times: int = 1) -> None:
        """Hold the next ``times`` calls for ``seconds`` (default ``hang_seconds``) without applying them."""
        hang = self.hang_seconds if seconds is None else seconds
        self.faults.add(Fault(method, None, "timeout", times, status=504, error="request_timeout", seconds=hang))

    def delay(self, method: str, seconds: float) -> None:
        """Slow every call to ``method`` (or ``"*"``) by ``seconds`` until ``clear_faults()``."""
        self.faults.add(Fault(method, None, "delay", None, seconds=seconds))

    def fail_randomly(
        self,
        fraction: float = 0.3,
        seed: int | None = None,
        kinds: Sequence[FaultKind] = ("500", "429", "timeout"),
        methods: Sequence[str] | None = None,
        *,
        hang_seconds: float | None = None,
        retry_after: int = 1,
    ) -> None:
        """Fail about ``fraction`` of calls (reproducibly with ``seed``) with one of ``kinds``."""
        hang = self.hang_seconds if hang_seconds is None else hang_seconds
        outcomes = {
            "429": Fault("*", None, "429", 1, status=429, error="ratelimited", retry_after=retry_after),
            "timeout": Fault("*", None, "timeout", 1, status=504, error="request_timeout", seconds=hang),
            "500": Fault("*", None, "status", 1, status=500, error="internal_error"),
        }
        only = frozenset(methods) if methods is not None else None
        self.faults.randomly(fraction, seed, [outcomes[kind] for kind in kinds],
                             lambda method, path: only is None or method in only)

    def clear_faults(self) -> None:
        self.faults.clear()

    # ------------------------------------------------------------------ response_url

    def new_trigger_id(self, user_id: str) -> str:
        """A trigger_id for a click by ``user_id``; views.open takes it once (and within ``trigger_ttl``)."""
        trigger = _trigger_id()
        with self._lock:
            self._triggers[trigger] = (user_id, time.monotonic())
        return trigger

    def views_for(self, user: str) -> list[JSONDict]:
        """The modals opened for ``user``, oldest first."""
        with self._lock:
            return [copy.deepcopy(v) for v in self.views if v.get("user") == user]

    def new_response_url(
        self, channel: str | None = None, message_ts: str | None = None, *, user_id: str | None = None
    ) -> str:
        """A response_url; tie it to a message so ``replace_original`` / ``delete_original`` act on it."""
        rid = uuid.uuid4().hex
        with self._lock:
            self._response_urls[rid] = _ResponseUrl(channel, message_ts, user_id)
        return f"{self.base_url}/response/{rid}"

    # ------------------------------------------------------------------ Socket Mode

    @property
    def socket_connect_count(self) -> int:
        """How many websocket connections have been accepted so far (reconnects included)."""
        with self._lock:
            return self._socket.connect_count

    @property
    def socket_open_count(self) -> int:
        with self._lock:
            return len(self._socket.connections)

    @property
    def socket_sent(self) -> list[JSONDict]:
        with self._lock:
            return copy.deepcopy(self._socket.sent)

    @property
    def socket_received(self) -> list[JSONDict]:
        with self._lock:
            return copy.deepcopy(self._socket.received)

    async def wait_socket_connected(self, timeout: float = 5.0, *, count: int = 1) -> int:
        """Wait until ``count`` connections were accepted in total and one is open; returns the total."""

        def check() -> int | None:
            s = self._socket
            return s.connect_count if s.connect_count >= count and s.connections else None

        return await self._on_own_loop(self._wait_until(check, timeout, f"socket connection #{count}"))

    async def socket_send(
        self,
        type: SocketEnvelopeType,
        payload: JSONDict,
        *,
        timeout: float = 5.0,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Send an envelope on the newest open connection (waiting for one); returns its envelope_id."""
        return await self._on_own_loop(self._socket_send(type, payload, timeout, retry_attempt, retry_reason))

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> JSONDict:
        """The client's ack for ``envelope_id``: ``{"envelope_id": ..., "payload"?: ...}``."""
        return await self._on_own_loop(
            self._wait_until(lambda: self._socket.acks.get(envelope_id), timeout, f"ack of {envelope_id}")
        )

    async def socket_disconnect(self) -> int:
        """Close every open connection with a close frame, as Slack does when it rotates servers."""
        return await self._on_own_loop(self._socket_disconnect())

    async def socket_send_disconnect(self, reason: str = "refresh_requested") -> int:
        """Send Slack's ``{"type": "disconnect"}`` message, which makes clients reconnect."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        return await self._on_own_loop(self._socket_broadcast(message))

    # ------------------------------------------------------------------ internals: faults

    async def _answer_fault(self, call: SlackCall, fault: Fault) -> web.Response:
        body: JSONDict = {"ok": False, "error": fault.error}
        call.status, call.failed, call.error, call.response = fault.status or 500, True, fault.error, body
        if fault.kind == "status":
            call.fault = str(fault.status) if fault.status != 200 else "error"
        else:
            call.fault = fault.kind
        self._record(call)
        if fault.kind == "timeout":
            await self._sleep(fault.seconds)
        headers = {"Retry-After": str(int(fault.retry_after))} if fault.kind == "429" else None
        return web.json_response(body, status=fault.status or 500, headers=headers)

    # ------------------------------------------------------------------ internals: HTTP handlers

    def _record(self, call: SlackCall) -> None:
        with self._lock:
            self.calls.append(call)
        self._bump()

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        call = SlackCall(method, {}, dict(request.headers), time.monotonic(), path=request.path)
        args, parse_error = await _read_args(request)
        token = _bearer(request.headers.get("Authorization")) or args.pop("token", None)
        args.pop("token", None)
        call.args = args

        delay = self.faults.take(method, kinds=_DELAY.__eq__, chance=False)
        if delay is not None:
            await self._sleep(delay.seconds)
        fault = self.faults.take(method, kinds=_DELAY.__ne__)
        if fault is not None and not fault.commit:
            return await self._answer_fault(call, fault)

        try:
            if parse_error is not None:
                raise _ApiError(parse_error)
            with self._lock:
                body = self._dispatch(method, token, args)
        except _ApiError as exc:
            body = {"ok": False, "error": exc.error, **exc.extra}
        if fault is not None:  # committed: the write landed even though the client sees a failure
            return await self._answer_fault(call, fault)
        call.response = body
        call.failed = not body.get("ok", False)
        call.error = body.get("error")
        self._record(call)
        return web.json_response(body)

    def _dispatch(self, method: str, token: str | None, args: JSONDict) -> JSONDict:
        handler = self._methods().get(method)
        if handler is None:
            raise _ApiError("unknown_method")
        if method == "api.test":  # the one method Slack answers without a token
            return handler(args)
        if not token:
            raise _ApiError("not_authed")
        wanted = self.app_token if method in _APP_TOKEN_METHODS else self.bot_token
        if token != wanted:
            if token in (self.app_token, self.bot_token):
                raise _ApiError("not_allowed_token_type")
            raise _ApiError("invalid_auth")
        return handler(args)

    def _methods(self) -> dict[str, Callable[[JSONDict], JSONDict]]:
        return {
            "api.test": lambda args: {"ok": True, "args": args},
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "conversations.open": self._conversations_open,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "users.info": self._users_info,
            "apps.connections.open": self._apps_connections_open,
            "views.open": self._views_open,
        }

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        rid = request.match_info["rid"]
        call = SlackCall("response_url", {}, dict(request.headers), time.monotonic(), path=request.path)
        raw = await request.text()
        try:
            parsed = json.loads(raw) if raw.lstrip().startswith("{") else dict(parse_qsl(raw))
            if "payload" in parsed and isinstance(parsed["payload"], str):
                parsed = json.loads(parsed["payload"])
        except ValueError:
            parsed = None
        call.args = parsed if isinstance(parsed, dict) else {"_raw": raw}

        delay = self.faults.take("response_url", kinds=_DELAY.__eq__, chance=False)
        if delay is not None:
            await self._sleep(delay.seconds)
        fault = self.faults.take("response_url", kinds=_DELAY.__ne__)
        if fault is not None and not fault.commit:
            return await self._answer_fault(call, fault)

        status = 200
        body: JSONDict = {"ok": True}
        with self._lock:
            target = self._response_urls.get(rid)
            if target is None:
                status, body = 404, {"ok": False, "error": "expired_url"}
            elif not isinstance(parsed, dict):
                status, body = 400, {"ok": False, "error": "invalid_payload"}
            else:
                try:
                    self._apply_response_url(target, parsed)
                except _ApiError as exc:
                    status, body = 400, {"ok": False, "error": exc.error, **exc.extra}
        if fault is not None:  # committed: the message changed even though the client sees a failure
            return await self._answer_fault(call, fault)
        call.status, call.response = status, body
        call.failed = status != 200
        call.error = body.get("error")
        self._record(call)
        return web.json_response(body, status=status)

    def _apply_response_url(self, target: _ResponseUrl, body: JSONDict) -> None:
        """Slack's response_url semantics: delete/replace the source message, or post a new one."""
        original = (
            self._find(target.channel, target.message_ts)
            if target.channel is not None and target.message_ts is not None
            else None
        )
        if _truthy(body.get("delete_original")):
            if original is None or target.channel is None:
                raise _ApiError("message_not_found")
            self._messages[target.channel].remove(original)
            return
        text, blocks = body.get("text"), body.get("blocks")
        if blocks is not None:
            _validate_blocks(blocks)
        if _truthy(body.get("replace_original")):
            if original is None:
                raise _ApiError("message_not_found")
            original["text"] = text or ""
            if blocks is not None:
                original["blocks"] = blocks
            else:
                original.pop("blocks", None)
            original["edited"] = {"user": self.bot_user_id, "ts": self.next_ts()}
            return
        if not text and not blocks:
            raise _ApiError("no_text")
        if body.get("response_type") == "in_channel" and target.channel is not None:
            self._store_message(target.channel, self._bot_message(text, blocks), body.get("thread_ts"))
            return
        self.ephemerals.append(
            {
                "channel": target.channel,
                "user": target.user_id,
                "text": text,
                "blocks": blocks,
                "thread_ts": body.get("thread_ts"),
                "message_ts": self.next_ts(),
                "via": "response_url",
            }
        )

    # ------------------------------------------------------------------ internals: Web API methods

    def _auth_test(self, args: JSONDict) -> JSONDict:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "signoff test",
            "user": "signoff",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        text, blocks = _text_and_blocks(args)
        if not text and not blocks and not args.get("attachments"):
            raise _ApiError("no_text")
        msg = self._bot_message(text, blocks)
        metadata = args.get("metadata")
        if metadata is not None:
            # Slack keeps `metadata` ({event_type, event_payload}) with the message; reads show it on request.
            if not isinstance(metadata, dict) or not isinstance(metadata.get("event_type"), str):
                raise _ApiError("invalid_metadata_format")
            msg["metadata"] = copy.deepcopy(metadata)
        thread_ts = args.get("thread_ts") or None
        self._store_message(channel, msg, thread_ts)
        return {"ok": True, "channel": channel, "ts": msg["ts"], "message": _shown(msg, False)}

    def _chat_update(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        ts = args.get("ts")
        if not ts:
            raise _ApiError("message_not_found")
        text, blocks = _text_and_blocks(args)
        msg = self._find(channel, str(ts))
        if msg is None:
            raise _ApiError("message_not_found")
        if msg.get("user") != self.bot_user_id:
            raise _ApiError("cant_update_message")
        if text is None and blocks is None and "attachments" not in args:
            raise _ApiError("no_text")
        if text is not None:
            msg["text"] = text
        if blocks is not None:  # no blocks: Slack keeps the old ones
            msg["blocks"] = blocks
        msg["edited"] = {"user": self.bot_user_id, "ts": self.next_ts()}
        return {
            "ok": True,
            "channel": channel,
            "ts": msg["ts"],
            "text": msg.get("text", ""),
            "message": copy.deepcopy(msg),
        }

    def _chat_post_ephemeral(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        user = args.get("user")
        if not user:
            raise _ApiError("user_not_in_channel")
        text, blocks = _text_and_blocks(args)
        if not text and not blocks and not args.get("attachments"):
            raise _ApiError("no_text")
        message_ts = self.next_ts()
        self.ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "text": text,
                "blocks": blocks,
                "thread_ts": args.get("thread_ts"),
                "message_ts": message_ts,
                "via": "chat.postEphemeral",
            }
        )
        return {"ok": True, "message_ts": message_ts}

    def _chat_delete(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        ts = str(args.get("ts") or "")
        msg = self._find(channel, ts) if ts else None
        if msg is None:
            raise _ApiError("message_not_found")
        if msg.get("user") != self.bot_user_id:
            raise _ApiError("cant_delete_message")
        self._messages[channel].remove(msg)
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_get_permalink(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        ts = str(args.get("message_ts") or "")
        if not ts or self._find(channel, ts) is None:
            raise _ApiError("message_not_found")
        link = f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _reaction_target(self, args: JSONDict) -> tuple[JSONDict, str]:
        channel, ts, name = args.get("channel"), args.get("timestamp"), args.get("name")
        if not channel or not ts:
            raise _ApiError("no_item_specified")
        if not name:
            raise _ApiError("invalid_name")
        msg = self._find(str(channel), str(ts))
        if msg is None:
            raise _ApiError("message_not_found")
        return msg, str(name).strip(":")

    def _reactions_add(self, args: JSONDict) -> JSONDict:
        msg, name = self._reaction_target(args)
        reactions: list[JSONDict] = msg.setdefault("reactions", [])
        for r in reactions:
            if r["name"] == name:
                if self.bot_user_id in r["users"]:
                    raise _ApiError("already_reacted")
                r["users"].append(self.bot_user_id)
                r["count"] += 1
                break
        else:
            reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
        return {"ok": True}

    def _reactions_remove(self, args: JSONDict) -> JSONDict:
        msg, name = self._reaction_target(args)
        for r in msg.get("reactions", []):
            if r["name"] == name and self.bot_user_id in r["users"]:
                r["users"].remove(self.bot_user_id)
                r["count"] -= 1
                if r["count"] == 0:
                    msg["reactions"].remove(r)
                return {"ok": True}
        raise _ApiError("no_reaction")

    def _conversations_open(self, args: JSONDict) -> JSONDict:
        """A DM with one user (`users` = "U…"): Slack answers with the IM channel, the same one each time."""
        users = str(args.get("users") or "")
        if not users or "," in users:
            raise _ApiError("users_not_found" if not users else "not_enough_users")
        channel = "D" + users.removeprefix("U")
        return {"ok": True, "channel": {"id": channel, "is_im": True, "user": users}}

    def _conversations_replies(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        ts = str(args.get("ts") or "")
        parent = self._find(channel, ts) if ts else None
        if parent is None:
            raise _ApiError("thread_not_found")
        replies = [m for m in self._messages[channel] if m.get("thread_ts") == ts and m["ts"] != ts]
        replies.sort(key=lambda m: _ts_key(m["ts"]))
        with_metadata = _truthy(args.get("include_all_metadata"))
        return {
            "ok": True,
            "messages": [_shown(m, with_metadata) for m in [parent, *replies]],
            "has_more": False,
            "response_metadata": {"next_cursor": ""},
        }

    def _conversations_history(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        top = [m for m in self._messages.get(channel, []) if m.get("thread_ts") in (None, m["ts"])]
        top.sort(key=lambda m: _ts_key(m["ts"]), reverse=True)
        with_metadata = _truthy(args.get("include_all_metadata"))
        return {
            "ok": True,
            "messages": [_shown(m, with_metadata) for m in top],
            "has_more": False,
            "response_metadata": {"next_cursor": ""},
        }

    def _views_open(self, args: JSONDict) -> JSONDict:
        trigger = args.get("trigger_id")
        if not trigger:
            raise _ApiError("invalid_arguments")
        trigger = str(trigger)
        if trigger in self._used_triggers:
            raise _ApiError("trigger_exchanged")
        if not re.fullmatch(r"\d+\.\d+\.[0-9a-f]+", trigger):
            raise _ApiError("invalid_trigger_id")
        self._used_triggers.add(trigger)
        # A trigger from `new_trigger_id` names its user (and can expire); one built elsewhere is taken as is.
        user, at = self._triggers.pop(trigger, (None, time.monotonic()))
        if self.trigger_ttl is not None and time.monotonic() - at > self.trigger_ttl:
            raise _ApiError("expired_trigger_id")
        view = args.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                raise _ApiError("invalid_arguments") from None
        problems = _view_problems(view)
        if problems:
            raise _ApiError("invalid_arguments", response_metadata={"messages": problems})
        assert isinstance(view, dict)
        stored = {
            **copy.deepcopy(view),
            "id": "V" + uuid.uuid4().hex[:10].upper(),
            "team_id": self.team_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "state": {"values": {}},
            "hash": uuid.uuid4().hex[:16],
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "user": user,
        }
        self.views.append(stored)
        public = {k: v for k, v in stored.items() if k != "user"}
        return {"ok": True, "view": copy.deepcopy(public)}

    def _users_info(self, args: JSONDict) -> JSONDict:
        user_id = str(args.get("user") or "")
        user = self.users.get(user_id)
        if user is None:
            if not _USER_ID_RE.match(user_id):
                raise _ApiError("user_not_found")
            user = self._user_record(user_id, user_id.lower())
        return {"ok": True, "user": copy.deepcopy(user)}

    def _apps_connections_open(self, args: JSONDict) -> JSONDict:
        ticket = uuid.uuid4().hex
        self._socket.tickets.add(ticket)
        return {"ok": True, "url": f"{self.socket_url}?ticket={ticket}"}

    # ------------------------------------------------------------------ internals: message store

    def _user_record(
        self, user_id: str, name: str, *, real_name: str | None = None, is_bot: bool = False
    ) -> JSONDict:
        real = real_name or name
        return {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": real,
            "deleted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "tz": "Etc/UTC",
            "profile": {"real_name": real, "display_name": name, "team": self.team_id},
        }

    def _bot_message(self, text: str | None, blocks: list[JSONDict] | None) -> JSONDict:
        msg: JSONDict = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": text or "",
            "ts": self.next_ts(),
            "team": self.team_id,
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": "signoff",
                "team_id": self.team_id,
            },
        }
        if blocks is not None:
            msg["blocks"] = blocks
        return msg

    def _store_message(self, channel: str, msg: JSONDict, thread_ts: str | None) -> None:
        """Append ``msg``; a reply also marks its parent as a thread root, as Slack does."""
        if thread_ts:
            msg["thread_ts"] = thread_ts
            parent = self._find(channel, thread_ts)
            if parent is not None and parent is not msg:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = int(parent.get("reply_count", 0)) + 1
                users = parent.setdefault("reply_users", [])
                if msg.get("user") not in users:
                    users.append(msg.get("user"))
                parent["latest_reply"] = msg["ts"]
                msg.setdefault("parent_user_id", parent.get("user"))
        self._messages.setdefault(channel, []).append(msg)

    def _find(self, channel: str, ts: str) -> JSONDict | None:
        for msg in self._messages.get(channel, []):
            if msg["ts"] == ts:
                return msg
        return None

    # ------------------------------------------------------------------ internals: Socket Mode

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        with self._lock:
            known = ticket in self._socket.tickets
        if not known:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self._lock:
            self._socket.connections.append(ws)
            self._socket.connect_count += 1
            open_count = len(self._socket.connections)
        self._bump()
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": open_count,
                    "debug_info": {
                        "host": "applink-fake",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    data = {"_raw": msg.data}
                with self._lock:
                    self._socket.received.append(data)
                    if isinstance(data, dict) and data.get("envelope_id"):
                        self._socket.acks[str(data["envelope_id"])] = data
                self._bump()
        finally:
            with self._lock:
                if ws in self._socket.connections:
                    self._socket.connections.remove(ws)
            self._bump()
        return ws

    async def _socket_send(
        self,
        type: SocketEnvelopeType,
        payload: JSONDict,
        within: float,
        retry_attempt: int,
        retry_reason: str,
    ) -> str:
        await self._wait_until(
            lambda: self._socket.connections[-1] if self._socket.connections else None,
            within,
            "open socket connection",
        )
        if type == "events_api" and payload.get("type") != "event_callback":
            payload = event_callback(
                payload, team_id=self.team_id, api_app_id=self.app_id, bot_user_id=self.bot_user_id
            )
        envelope_id = str(uuid.uuid4())
        envelope: JSONDict = {"envelope_id": envelope_id, "type": type, "payload": payload}
        if type == "events_api":
            envelope["accepts_response_payload"] = False
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        else:
            envelope["accepts_response_payload"] = True
        with self._lock:
            ws = self._socket.connections[-1]
            self._socket.sent.append(envelope)
        await ws.send_json(envelope)
        return envelope_id

    async def _socket_disconnect(self) -> int:
        with self._lock:
            sockets = list(self._socket.connections)
        for ws in sockets:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY), 2.0)
        return len(sockets)

    async def _socket_broadcast(self, message: JSONDict) -> int:
        with self._lock:
            sockets = list(self._socket.connections)
            self._socket.sent.append(message)
        for ws in sockets:
            await ws.send_json(message)
        return len(sockets)


# ---------------------------------------------------------------------- request parsing helpers


async def _read_args(request: web.Request) -> tuple[JSONDict, str | None]:
    """Merge query string, form and JSON body args the way Slack's API accepts them."""
    args: JSONDict = dict(request.query)
    if not request.can_read_body:
        return args, None
    raw = await request.read()
    if not raw:
        return args, None
    if request.content_type == "application/json":
        try:
            body = json.loads(raw)
        except ValueError:
            return args, "invalid_json"
        if not isinstance(body, dict):
            return args, "invalid_json"
        args.update(body)
    else:  # form-encoded (slack_sdk's params/data, curl, the token field)
        args.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    return args, None


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


def _ts_key(ts: str) -> tuple[int, int]:
    sec, _, frac = ts.partition(".")
    return int(sec), int(frac or 0)


def _need_channel(args: JSONDict) -> str:
    channel = args.get("channel")
    if not channel or not isinstance(channel, str):
        raise _ApiError("channel_not_found")
    return channel


def _text_and_blocks(args: JSONDict) -> tuple[str | None, list[JSONDict] | None]:
    text = args.get("text")
    if text is not None and not isinstance(text, str):
        text = str(text)
    if text is not None and len(text) > 40_000:
        raise _ApiError("msg_too_long")
    blocks = args.get("blocks")
    if isinstance(blocks, str):  # form-encoded bodies carry blocks as a JSON string
        try:
            blocks = json.loads(blocks) if blocks else None
        except ValueError:
            raise _ApiError("invalid_blocks_format") from None
    if blocks is not None:
        _validate_blocks(blocks)
    return text, blocks


# Block Kit limits Slack enforces with ``invalid_blocks`` (see Slack's Block Kit reference).
_TEXT_LIMITS = {"section": 3000, "header": 150}


def _plain(obj: Any, limit: int) -> bool:
    return (isinstance(obj, dict) and obj.get("type") == "plain_text" and isinstance(obj.get("text"), str)
            and 0 < len(obj["text"]) <= limit)


def _view_problems(view: Any) -> list[str]:
    """What Slack would refuse in a modal view (its documented limits), as its messages say it."""
    if not isinstance(view, dict):
        return ["[ERROR] missing required field: view"]
    problems: list[str] = []
    if view.get("type") != "modal":
        problems.append("[ERROR] must be 'modal' [json-pointer:/view/type]")
    if not _plain(view.get("title"), 24):
        problems.append("[ERROR] must be a plain_text object of at most 24 characters [json-pointer:/view/title]")
    for key in ("submit", "close"):
        if key in view and not _plain(view[key], 24):
            problems.append(f"[ERROR] must be a plain_text object of at most 24 characters "
                            f"[json-pointer:/view/{key}]")
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]")
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 100:
        problems.append("[ERROR] must provide between 1 and 100 blocks [json-pointer:/view/blocks]")
        return problems
    has_input = False
    for index, block in enumerate(blocks):
        if not isinstance(block, dict):
            problems.append(f"[ERROR] must be an object [json-pointer:/view/blocks/{index}]")
            continue
        if block.get("type") != "input":
            continue
        has_input = True
        element = block.get("element") or {}
        if not _plain(block.get("label"), 2000):
            problems.append(f"[ERROR] must be a plain_text label [json-pointer:/view/blocks/{index}/label]")
        if element.get("type") != "plain_text_input" or not element.get("action_id"):
            problems.append(f"[ERROR] must be a plain_text_input with an action_id "
                            f"[json-pointer:/view/blocks/{index}/element]")
        if not 0 < int(element.get("max_length", 3000)) <= 3000:
            problems.append(f"[ERROR] must be at most 3000 [json-pointer:/view/blocks/{index}/element/max_length]")
    if has_input and "submit" not in view:
        problems.append("[ERROR] a modal with input blocks needs a submit button [json-pointer:/view/submit]")
    return problems


def _validate_blocks(blocks: Any) -> None:
    """Reject what Slack rejects most often, so a rendering bug fails in tests rather than in prod."""
    problems: list[str] = []
    if not isinstance(blocks, list):
        raise _ApiError("invalid_blocks_format")
    if len(blocks) > 50:
        problems.append("no more than 50 items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"missing required field: type [json-pointer:{where}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in block_ids:
                problems.append(f"duplicate block_id [json-pointer:{where}/block_id]")
            block_ids.add(block_id)
            if len(str(block_id)) > 255:
                problems.append(f"must be less than 256 characters [json-pointer:{where}/block_id]")
        kind = block["type"]
        text = block.get("text")
        if kind in _TEXT_LIMITS:
            if kind == "section" and text is None and not block.get("fields"):
                problems.append(f"must provide text or fields [json-pointer:{where}]")
            if isinstance(text, dict) and len(str(text.get("text", ""))) > _TEXT_LIMITS[kind]:
                limit = _TEXT_LIMITS[kind]
                problems.append(f"must be at most {limit} characters [json-pointer:{where}/text]")
        if kind == "section" and len(block.get("fields") or []) > 10:
            problems.append(f"no more than 10 items allowed [json-pointer:{where}/fields]")
        if kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > 25:
                problems.append(f"must have 1 to 25 elements [json-pointer:{where}/elements]")
            action_ids: set[str] = set()
            for j, el in enumerate(elements):
                ew = f"{where}/elements/{j}"
                if not isinstance(el, dict):
                    problems.append(f"invalid element [json-pointer:{ew}]")
                    continue
                action_id = el.get("action_id")
                if action_id is not None:
                    if action_id in action_ids:
                        problems.append(f"duplicate action_id [json-pointer:{ew}/action_id]")
                    action_ids.add(action_id)
                if el.get("type") == "button":
                    label = el.get("text")
                    if not isinstance(label, dict) or label.get("type") != "plain_text":
                        problems.append(f"must be a plain_text object [json-pointer:{ew}/text]")
                    elif len(str(label.get("text", ""))) > 75:
                        problems.append(f"must be at most 75 characters [json-pointer:{ew}/text]")
                    if len(str(el.get("value", ""))) > 2000:
                        problems.append(f"must be at most 2000 characters [json-pointer:{ew}/value]")
    if problems:
        raise _ApiError(
            "invalid_blocks",
            errors=problems,
            response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
        )


# ---------------------------------------------------------------------- signing and request builders


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 request signature headers for ``body`` (what Bolt verifies on /slack/events)."""
    ts = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(ts).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


_wall_counter = itertools.count()


def _wall_ts() -> str:
    """A unique Slack-style ts near now, for events that did not come from the fake's store."""
    micros = int(time.time() * 1_000_000) + next(_wall_counter)
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _trigger_id() -> str:
    return f"{random.randint(10**12, 10**13 - 1)}.{random.randint(10**11, 10**12 - 1)}.{uuid.uuid4().hex}"


def slash_command_payload(
    text: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    command: str = "/signoff",
    team_id: str = DEFAULT_TEAM_ID,
    *,
    user_name: str | None = None,
    channel_name: str = "ops",
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    api_app_id: str = DEFAULT_APP_ID,
    trigger_id: str | None = None,
) -> dict[str, str]:
    """The fields Slack sends for a slash command (form fields in HTTP mode, the Socket Mode payload)."""
    return {
        "token": DEFAULT_VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or _trigger_id(),
    }


def slash_command_body(
    text: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    command: str = "/signoff",
    team_id: str = DEFAULT_TEAM_ID,
    **kwargs: Any,
) -> bytes:
    """A slash command as Slack POSTs it: ``application/x-www-form-urlencoded``."""
    payload = slash_command_payload(text, user_id, channel_id, response_url, command, team_id, **kwargs)
    return urlencode(payload).encode()


def block_actions_payload(
    user_id: str,
    channel_id: str,
    message_ts: str,
    action_id: str,
    value: str,
    response_url: str,
    *,
    block_id: str = "signoff_actions",
    button_text: str = "Button",
    message: JSONDict | None = None,
    user_name: str | None = None,
    channel_name: str = "ops",
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    api_app_id: str = DEFAULT_APP_ID,
    bot_user_id: str = DEFAULT_BOT_USER_ID,
    trigger_id: str | None = None,
) -> JSONDict:
    """A ``block_actions`` button click as Slack builds it; pass ``message=fake.message(...)``."""
    name = user_name or user_id.lower()
    msg = (
        copy.deepcopy(message)
        if message is not None
        else {
            "type": "message",
            "user": bot_user_id,
            "ts": message_ts,
            "text": "",
            "team": team_id,
            "blocks": [],
        }
    )
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": DEFAULT_VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or _trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": msg,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": _wall_ts(),
            }
        ],
    }


def block_actions_body(
    user_id: str,
    channel_id: str,
    message_ts: str,
    action_id: str,
    value: str,
    response_url: str,
    **kwargs: Any,
) -> bytes:
    """A button click as Slack POSTs it: form-encoded, one ``payload`` field holding the JSON."""
    payload = block_actions_payload(user_id, channel_id, message_ts, action_id, value, response_url, **kwargs)
    return urlencode({"payload": json.dumps(payload)}).encode()


def view_submission_payload(
    user_id: str,
    view: JSONDict,
    values: dict[str, str],
    *,
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    api_app_id: str = DEFAULT_APP_ID,
) -> JSONDict:
    """A ``view_submission`` for a modal views.open showed (``fake.views_for(user)[-1]``): ``values`` maps
    each input's ``action_id`` to what was typed, placed in ``view.state.values`` as Slack does."""
    state: JSONDict = {}
    for block in view.get("blocks") or []:
        element = block.get("element") or {}
        if block.get("type") == "input" and element.get("action_id") in values:
            value = values[element["action_id"]]
            state.setdefault(block["block_id"], {})[element["action_id"]] = {
                "type": element.get("type", "plain_text_input"), "value": value or None}
    submitted = {k: v for k, v in copy.deepcopy(view).items() if k != "user"}
    submitted["state"] = {"values": state}
    name = user_id.lower()
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": team_domain},
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": DEFAULT_VERIFICATION_TOKEN,
        "trigger_id": _trigger_id(),
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_submission_body(user_id: str, view: JSONDict, values: dict[str, str], **kwargs: Any) -> bytes:
    """A modal's submission as Slack POSTs it: form-encoded, one ``payload`` field holding the JSON."""
    return urlencode({"payload": json.dumps(view_submission_payload(user_id, view, values, **kwargs))}).encode()


def event_callback(
    event: JSONDict,
    team_id: str = DEFAULT_TEAM_ID,
    api_app_id: str = DEFAULT_APP_ID,
    *,
    bot_user_id: str = DEFAULT_BOT_USER_ID,
) -> JSONDict:
    """The Events API ``event_callback`` envelope around ``event``."""
    return {
        "token": DEFAULT_VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }


def event_body(
    event: JSONDict,
    team_id: str = DEFAULT_TEAM_ID,
    api_app_id: str = DEFAULT_APP_ID,
    *,
    bot_user_id: str = DEFAULT_BOT_USER_ID,
) -> bytes:
    """An Events API request body (JSON) for Bolt's HTTP endpoint."""
    return json.dumps(event_callback(event, team_id, api_app_id, bot_user_id=bot_user_id)).encode()


def message_event(
    user: str, channel: str, text: str, ts: str | None = None, *, team_id: str = DEFAULT_TEAM_ID
) -> JSONDict:
    """A ``message`` event from a human in a public channel."""
    stamp = ts or _wall_ts()
    return {
        "type": "message",
        "user": user,
        "text": text,
        "ts": stamp,
        "team": team_id,
        "channel": channel,
        "channel_type": "channel",
        "event_ts": stamp,
        "client_msg_id": str(uuid.uuid4()),
    }


def thread_message_event(
    user: str,
    channel: str,
    text: str,
    thread_ts: str,
    ts: str | None = None,
    *,
    team_id: str = DEFAULT_TEAM_ID,
) -> JSONDict:
    """A reply in the thread under ``thread_ts`` (a ``message`` event carrying ``thread_ts``)."""
    event = message_event(user, channel, text, ts, team_id=team_id)
    event["thread_ts"] = thread_ts
    return event


def reaction_added_event(
    user: str, reaction: str, channel: str, ts: str, *, item_user: str = DEFAULT_BOT_USER_ID
) -> JSONDict:
    """A ``reaction_added`` event; ``reaction`` is a bare name such as ``white_check_mark`` or ``+1``."""
    return {
        "type": "reaction_added",
        "user": user,
        "reaction": reaction,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "item_user": item_user,
        "event_ts": _wall_ts(),
    }


async def post_signed(
    url: str,
    body: bytes,
    secret: str,
    content_type: str | None = None,
    timestamp: int | None = None,
    *,
    session: aiohttp.ClientSession | None = None,
    timeout: float = 10.0,
) -> tuple[int, str]:
    """POST ``body`` signed as Slack would; ``content_type`` defaults to JSON for ``{…}``, else form."""
    if content_type is None:
        is_json = body.lstrip().startswith(b"{")
        content_type = "application/json" if is_json else "application/x-www-form-urlencoded"
    headers = {"Content-Type": content_type, **sign(secret, body, timestamp)}
    own = session is None
    client = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
    try:
        async with client.post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.text()
    finally:
        if own:
            await client.close()


def _truthy(value: object) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _shown(message: JSONDict, with_metadata: bool) -> JSONDict:
    """A stored message as a read returns it: `metadata` only when asked for (`include_all_metadata`)."""
    shown = copy.deepcopy(message)
    if not with_metadata:
        shown.pop("metadata", None)
    return shown
