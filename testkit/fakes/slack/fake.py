"""FakeSlack: one workspace on 127.0.0.1, its state, seeding and reading it.

Each other job is a part of the class in its own module (see the package's docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
from collections.abc import Callable

import aiohttp
from aiohttp import web

from testkit.fakes.slack.faults import Faults
from testkit.fakes.slack.messages import MessageStore
from testkit.fakes.slack.records import (
    DEFAULT_APP_ID,
    DEFAULT_BOT_USER_ID,
    DEFAULT_TEAM_DOMAIN,
    DEFAULT_TEAM_ID,
    JSONDict,
    SlackCall,
    _ResponseUrl,
    _SocketState,
)
from testkit.fakes.slack.response_url import ResponseUrls
from testkit.fakes.slack.socket_mode import SocketMode
from testkit.fakes.slack.validation import _ts_key
from testkit.fakes.slack.web_api import WebApi
from testkit.support.loopback import LoopbackServer


class FakeSlack(Faults, ResponseUrls, SocketMode, WebApi, MessageStore, LoopbackServer):
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
