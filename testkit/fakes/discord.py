"""A loopback fake of Discord (REST API v10 + gateway websocket) that drives a real discord.py client.

Why: signoff's Discord adapter must be tested through Discord's real wire protocol (docs/design.md §5) with
an unmodified discord.py on the other end. The fake answers the way Discord does (payload shapes that
discord.py 2.7 parses, Discord's JSON error bodies and codes, rate-limit headers, intents and the
message-content rule on the gateway) and keeps the state tests assert on: messages after edits,
threads, reactions, interaction callbacks and follow-ups, registered commands.

Wiring a client to it::

    async with FakeDiscord() as fake:
        with point_discord_py_at(fake):
            client = MyClient(intents=..., guild_ready_timeout=0.05)
            await client.login(fake.token)
            task = asyncio.create_task(client.connect())
            await client.wait_until_ready()
            ...
            await client.close()  # before the fake stops, or the client keeps reconnecting
            await task

``point_discord_py_at`` sets ``discord.http.Route.BASE`` (REST, interaction callbacks and webhooks all
go through it) and ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``; both are read at request /
connect time, so set them before ``start()``/``connect()``. A bot in a subprocess gets
``fake.api_url`` / ``fake.gateway_url`` through its settings; serve it with
``with FakeDiscord.running_in_thread() as fake:`` and drive the fake with ``fake.run_sync(coro)`` (its
async helpers also work when awaited from another event loop).

discord.py behaviour the fake accommodates (read from discord.py 2.7.1, ``discord/http.py``,
``discord/webhook/async_.py``, ``discord/gateway.py``, ``discord/state.py``):

* REST bodies are parsed as JSON only when ``Content-Type`` is exactly ``application/json``; the fake
  never adds aiohttp's ``; charset=utf-8``.
* ``HTTPClient.request`` makes up to 5 attempts. A 429 is retried after the *body's* ``retry_after``
  (the headers only feed the bucket bookkeeping) but only if the response carries a ``Via`` header:
  without it discord.py assumes a Cloudflare ban and raises ``HTTPException`` at once. The fake sends
  ``Via: 1.1 google`` like Discord. ``retry_after`` above the client's ``max_ratelimit_timeout`` raises
  ``RateLimited``; ``"global": true`` pauses every request of that client. 500, 502, 504 and 524 are
  retried after sleeping 1, 3, 5, 7 s (``1 + 2 * attempt``); any other 5xx (503!) raises
  ``DiscordServerError`` immediately, as do 5xx after the last attempt. Connection resets are retried
  only for errno 54/10054 (macOS/Windows), not Linux's 104. There is no request timeout besides
  aiohttp's 5-minute default, so a hanging Discord stalls the caller (the ``timeout`` fault models it).
* Interaction callbacks and webhook follow-ups go through ``AsyncWebhookAdapter`` instead: no
  ``Authorization`` header, a lock per (webhook id, token), 429 retried (also only with ``Via``) and
  *every* status >= 500 retried with the same 1, 3, 5 s backoff.
* The callback is ``POST /interactions/{id}/{token}/callback?with_response=1`` and must answer
  ``{"interaction": {id, type, response_message_id, response_message_loading,
  response_message_ephemeral}, "resource": {"type", "message"}}``. Follow-ups from
  ``interaction.followup.send`` always use ``?wait=1`` (application webhooks force it).
* Text frames bypass discord.py's decompressor, so plain JSON frames work although the client
  connects with ``compress=zlib-stream``. ``READY.resume_gateway_url`` is where it reconnects with
  RESUME after a drop; ``INVALID_SESSION`` (false) makes it IDENTIFY again at ``DEFAULT_GATEWAY``.
  ``client.close()`` closes with 1000, which ends the session (as on Discord). ``RESUMED``'s ``d``
  must be an object: discord.py writes into it.
* ``on_ready`` fires ``guild_ready_timeout`` (default 2 s) after the last GUILD_CREATE; pass
  ``guild_ready_timeout=0.05`` to ``Client`` in tests. Members in GUILD_CREATE come with
  ``member_count`` equal to their number, so a client with the members intent needs no chunking.
  ``Client.before_identify_hook`` sleeps 5 s before every non-initial IDENTIFY (after
  INVALID_SESSION); override it in tests that invalidate sessions.
* Successful responses carry ``X-RateLimit-*`` headers with plenty remaining: discord.py tracks them
  per bucket and would otherwise throttle itself. Injected faults apply to REST only.
* Interactions: ``attachment_size_limit`` is required; a member needs ``flags``; an application
  command's ``data.guild_id`` makes the ``CommandTree`` look among guild commands (so the fake sets it
  for guild-registered and unregistered commands). A ``DynamicItem`` only fires when the clicked
  message's components contain the ``custom_id`` (otherwise discord.py drops the click silently), so
  ``click`` sends the stored message and refuses custom ids the message does not carry.

Discord behaviour modelled beyond discord.py's needs: message-content stripping without the
``message_content`` intent (except the bot's own messages and ones mentioning it), intent filtering of
dispatches, privileged intents (close 4014 unless allowed), the 3-second deadline for the first
interaction answer (404 ``Unknown interaction`` 10062), "already acknowledged" (400, 40060), the
first follow-up after a "thinking" defer replacing the loading message, thread ids equal to their
starter message's id, ``enforce_nonce`` de-duplication, and the basic length limits (content 2000,
``custom_id`` 100, 5 action rows of 5 buttons, embeds).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import hashlib
import json
import math
import re
import secrets
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

import yarl
from aiohttp import WSMsgType, web

from testkit.support.loopback import Fault, LoopbackServer, full_path

__all__ = [
    "INTENT_GUILDS",
    "INTENT_GUILD_MEMBERS",
    "INTENT_GUILD_MESSAGES",
    "INTENT_GUILD_MESSAGE_REACTIONS",
    "INTENT_MESSAGE_CONTENT",
    "DiscordCall",
    "FakeDiscord",
    "GatewayFrame",
    "InteractionReply",
    "point_discord_py_at",
]

JSON = dict[str, Any]
T = TypeVar("T")
P = ParamSpec("P")
FaultKind = Literal["500", "429", "timeout"]

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

FLAG_HAS_THREAD = 1 << 5
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7

# Which intent a dispatch needs; events not listed (READY, RESUMED, INTERACTION_CREATE) always go out.
_EVENT_INTENTS: dict[str, int] = {
    "GUILD_CREATE": INTENT_GUILDS,
    "CHANNEL_CREATE": INTENT_GUILDS,
    "THREAD_CREATE": INTENT_GUILDS,
    "THREAD_UPDATE": INTENT_GUILDS,
    "THREAD_DELETE": INTENT_GUILDS,
    "GUILD_MEMBER_ADD": INTENT_GUILD_MEMBERS,
    "MESSAGE_CREATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_UPDATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_DELETE": INTENT_GUILD_MESSAGES,
    "MESSAGE_REACTION_ADD": INTENT_GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE": INTENT_GUILD_MESSAGE_REACTIONS,
}


def _perm(*bits: int) -> int:
    return functools.reduce(lambda acc, bit: acc | (1 << bit), bits, 0)


# view channel, send messages, read history, add reactions, embed links, attach files, use app
# commands, create public threads, send messages in threads
PERMS_EVERYONE = _perm(6, 10, 11, 14, 15, 16, 31, 35, 38)
PERMS_BOT = PERMS_EVERYONE | _perm(13, 34, 36)  # + manage messages, manage threads, private threads
PERMS_ALL = (1 << 51) - 1

_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_DELAY = "delay"
_MENTION_RE = re.compile(r"<@!?(\d+)>")


# ---------------------------------------------------------------------------------- public records


@dataclass
class DiscordCall:
    """One REST request the fake answered; every request is kept so tests can assert on retries."""

    method: str
    path: str  # decoded, without the /api/v10 prefix, e.g. "/channels/1/messages/2/reactions/✅/@me"
    json: Any
    headers: dict[str, str]
    at: float  # time.monotonic() when the request arrived
    query: dict[str, str] = field(default_factory=dict)
    status: int = 0
    failed: bool = False  # answered with a status >= 400 (injected or not)
    fault: str | None = None  # the injected fault that answered it: "500", "429", "timeout", ...
    response: Any = None


@dataclass
class GatewayFrame:
    """A frame a client sent on the gateway (heartbeats, IDENTIFY with its intents, RESUME...)."""

    session_id: str | None
    op: int | None
    d: Any
    at: float


@dataclass
class InteractionReply:
    """An answer to an interaction: the callback, then follow-ups and edits, in arrival order."""

    kind: Literal["callback", "followup", "edit_original", "edit_followup", "delete"]
    type: int | None  # callback type (4 reply, 5 defer, 6 deferred update, 7 update message)
    json: JSON
    message_id: str | None
    ephemeral: bool
    at: float


def point_discord_py_at(fake: FakeDiscord) -> _Pointing:
    """Redirect discord.py's REST base and default gateway to ``fake`` until restored.

    Applies at once; use it as a context manager (or call ``.restore()``) to put the old values back.
    """
    return _Pointing(fake.api_url, fake.gateway_url)


class _Pointing:
    def __init__(self, api_url: str, gateway_url: str) -> None:
        import discord.gateway
        import discord.http

        self._route = discord.http.Route
        self._ws = discord.gateway.DiscordWebSocket
        self._old_base = self._route.BASE
        self._old_gateway = self._ws.DEFAULT_GATEWAY
        self._route.BASE = api_url
        self._ws.DEFAULT_GATEWAY = yarl.URL(gateway_url)
        self._restored = False

    def restore(self) -> None:
        if not self._restored:
            self._route.BASE = self._old_base
            self._ws.DEFAULT_GATEWAY = self._old_gateway
            self._restored = True

    def __enter__(self) -> _Pointing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()


# ---------------------------------------------------------------------------------- internals


@dataclass
class _Session:
    session_id: str
    intents: int
    identify: JSON
    seq: int = 0
    log: list[tuple[int, str]] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None
    alive: bool = True  # resumable; False once the client closed with 1000/1001
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    query: dict[str, str]
    session: _Session | None = None
    server_closed: bool = False


@dataclass
class _Interaction:
    id: str
    token: str
    type: int
    payload: JSON
    channel_id: str
    created: float  # time.monotonic()
    message_id: str | None = None  # the clicked message (component interactions)
    callback_type: int | None = None
    original_id: str | None = None
    loading: bool = False  # a "thinking" placeholder waits for its first follow-up / edit
    replies: list[InteractionReply] = field(default_factory=list)
    modal: JSON | None = None  # the modal this interaction was answered with (callback type 9)
    submitted: bool = False  # the modal's submission was dispatched (each modal submits once)


class _HTTPError(Exception):
    """Raised by a route handler to answer with Discord's error JSON."""

    def __init__(self, status: int, message: str, code: int = 0, errors: JSON | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: JSON = {"message": message, "code": code}
        if errors is not None:
            self.body["errors"] = errors


def _unknown(what: str, code: int) -> _HTTPError:
    return _HTTPError(404, f"Unknown {what}", code)


def _invalid(field_path: str, message: str, error_code: str = "BASE_TYPE_INVALID") -> _HTTPError:
    errors: JSON = {"_errors": [{"code": error_code, "message": message}]}
    for part in reversed(field_path.split(".")):
        errors = {part: errors}
    return _HTTPError(400, "Invalid Form Body", 50035, errors)


@dataclass
class _Req:
    method: str
    path: str
    params: dict[str, str]
    json: Any
    query: dict[str, str]


_Handler = Callable[["_Req"], Coroutine[Any, Any, tuple[int, Any]]]


def _on_fake_loop(
    fn: Callable[Concatenate[FakeDiscord, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[FakeDiscord, P], Coroutine[Any, Any, T]]:
    """Run a coroutine method on the fake's own loop, so it also works from a test thread's loop."""

    @functools.wraps(fn)
    async def wrapper(self: FakeDiscord, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._on_own_loop(fn(self, *args, **kwargs))

    return wrapper


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    """A response whose Content-Type is exactly ``application/json`` (discord.py insists)."""
    out = dict(headers or {})
    if status == 204 or body is None:
        return web.Response(status=204 if body is None and status < 300 else status, headers=out)
    out["Content-Type"] = "application/json"
    return web.Response(status=status, body=json.dumps(body, ensure_ascii=False).encode(), headers=out)


class FakeDiscord(LoopbackServer):
    """Discord on 127.0.0.1: REST under ``/api/v10`` and the gateway at ``/gateway``, one seeded guild."""

    thread_name = "fake-discord"
    poll_interval = 0.05  # a wait's predicate may look at the client's state, which the fake does not see change

    def __init__(
        self,
        *,
        token: str = "signoff-fake-bot-token",
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval_ms: int = 41250,
        interaction_deadline: float | None = 3.0,
        privileged_intents_allowed: bool = True,
        hang_seconds: float = 10.0,
        guild_name: str = "signoff-test",
        channel_name: str = "ops",
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        # Discord drops interactions not answered within 3 s; None disables the check.
        self.interaction_deadline = interaction_deadline
        # False models a bot whose privileged intents are not enabled in the developer portal.
        self.privileged_intents_allowed = privileged_intents_allowed
        # How long a "timeout" fault holds a request before answering 504.
        self.hang_seconds = hang_seconds

        self._last_snowflake = 0
        self.calls: list[DiscordCall] = []
        self.gateway_received: list[GatewayFrame] = []
        self.gateway_sent: list[JSON] = []
        self.gateway_connects: list[dict[str, str]] = []  # query of every websocket connect
        self.identifies: list[JSON] = []
        self.ready_count = 0  # READY + RESUMED sent
        self.interactions: dict[str, JSON] = {}

        self.application_id = self.snowflake()
        self.bot_user: JSON = {
            **self._user_payload(self.application_id, "signoff", bot=True),
            "verified": True,
            "mfa_enabled": False,
            "email": None,
            "flags": 0,
        }
        self.bot_user_id: str = self.application_id  # Discord bots share their application's id
        self.owner_id = self.snowflake()
        self.guild_id = self.snowflake()
        self._users: dict[str, JSON] = {
            self.bot_user_id: self.bot_user,
            self.owner_id: self._user_payload(self.owner_id, "owner"),
        }
        self._roles: list[JSON] = [self._role_payload(self.guild_id, "@everyone", 0, PERMS_EVERYONE)]
        self.bot_role_id = self.add_role("signoff", permissions=PERMS_BOT, managed=True)
        self.guild_name = guild_name
        self._guild_joined_at = _now_iso()
        self._members: dict[str, JSON] = {}
        self._channels: dict[str, JSON] = {}
        self._channel_order: list[str] = []
        self._messages: dict[str, JSON] = {}
        self._channel_messages: dict[str, list[str]] = {}
        self._reactions: dict[str, dict[str, list[str]]] = {}
        self._nonces: dict[tuple[str, str], str] = {}
        self.threads: dict[str, str] = {}  # thread channel id by parent (starter) message id
        self._global_commands: list[JSON] = []
        self._guild_commands: dict[str, list[JSON]] = {}
        self._interactions: dict[str, _Interaction] = {}
        self._by_token: dict[str, _Interaction] = {}
        self._sessions: dict[str, _Session] = {}
        self._conns: list[_Conn] = []
        self._members[self.bot_user_id] = self._member_payload(self.bot_user_id, [self.bot_role_id])
        self.channel_id = self.add_channel(channel_name)
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ lifecycle

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/gateway", self._handle_gateway)
        app.router.add_get("/gateway/", self._handle_gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._handle_rest)

    async def _closing(self) -> None:
        await self.disconnect_clients(code=1001)

    def _recent(self) -> list[str]:
        return [f"{c.method} {c.path} -> {c.status}" for c in self.calls[-15:]]

    @property
    def api_url(self) -> str:
        """REST base, the value for ``discord.http.Route.BASE`` / ``DISCORD_API_URL``."""
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """Gateway URL, the value for ``DiscordWebSocket.DEFAULT_GATEWAY`` / ``DISCORD_GATEWAY_URL``."""
        return f"ws://{self.host}:{self.port}/gateway"

    # ------------------------------------------------------------------ seeding

    def snowflake(self) -> str:
        """A new Discord-style id (timestamp << 22), strictly increasing, as a string."""
        with self._lock:
            value = max((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22, self._last_snowflake + 1)
            self._last_snowflake = value
            return str(value)

    def add_role(self, name: str, *, permissions: int = PERMS_EVERYONE, managed: bool = False) -> str:
        """Add a guild role (seed before clients connect: no GUILD_ROLE_CREATE is sent)."""
        with self._lock:
            role_id = self.snowflake()
            role = self._role_payload(role_id, name, len(self._roles), permissions)
            if managed:
                role["managed"] = True
                role["tags"] = {"bot_id": self.bot_user_id}
            self._roles.append(role)
            return role_id

    def role_id(self, name: str) -> str:
        with self._lock:
            for role in self._roles:
                if role["name"] == name:
                    return str(role["id"])
        raise KeyError(name)

    def add_channel(self, name: str) -> str:
        """Add a text channel (seed before clients connect: no CHANNEL_CREATE is sent)."""
        with self._lock:
            cid = self.snowflake()
            self._channels[cid] = {
                "id": cid,
                "type": 0,
                "guild_id": self.guild_id,
                "name": name,
                "position": len(self._channel_order),
                "permission_overwrites": [],
                "parent_id": None,
                "nsfw": False,
                "topic": None,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "flags": 0,
                "default_auto_archive_duration": 1440,
            }
            self._channel_order.append(cid)
            self._channel_messages[cid] = []
            return cid

    def add_member(self, user_id: str | int, username: str, roles: Sequence[str] = ()) -> JSON:
        """Make ``user_id`` a guild member; ``roles`` are role names or ids. Returns the member payload.

        Seed members before the client connects (they are in GUILD_CREATE); use ``member_join`` to
        also dispatch GUILD_MEMBER_ADD to connected clients.
        """
        uid = str(user_id)
        with self._lock:
            role_ids = [r if r.isdigit() else self.role_id(r) for r in roles]
            self._users[uid] = self._user_payload(uid, username)
            member = self._member_payload(uid, role_ids)
            self._members[uid] = member
            return copy.deepcopy(member)

    @_on_fake_loop
    async def member_join(self, user_id: str | int, username: str, roles: Sequence[str] = ()) -> JSON:
        """``add_member`` plus a GUILD_MEMBER_ADD dispatch (members intent only, as on Discord)."""
        member = self.add_member(user_id, username, roles)
        await self.dispatch("GUILD_MEMBER_ADD", {**member, "guild_id": self.guild_id})
        return member

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str, path_regex: str) -> list[DiscordCall]:
        """Calls whose method matches (``"*"`` for any) and whose path fully matches ``path_regex``."""
        pattern = re.compile(path_regex)
        with self._lock:
            return [
                c for c in self.calls if method in ("*", c.method) and pattern.fullmatch(c.path) is not None
            ]

    def mark(self) -> int:
        """A position in ``calls``; pass it as ``since=`` to look only at later calls."""
        with self._lock:
            return len(self.calls)

    def messages(self, channel_id: str | int | None = None) -> list[JSON]:
        """Current (edited) non-ephemeral messages of a channel or thread, oldest first."""
        cid = str(channel_id or self.channel_id)
        with self._lock:
            return [self._render_message(mid) for mid in self._channel_messages.get(cid, [])]

    def message(self, message_id: str | int) -> JSON:
        """A stored message by id, ephemeral ones included; KeyError when unknown."""
        with self._lock:
            if str(message_id) not in self._messages:
                raise KeyError(str(message_id))
            return self._render_message(str(message_id))

    def thread_messages(self, thread_id: str | int) -> list[JSON]:
        return self.messages(thread_id)

    def channel(self, channel_id: str | int) -> JSON:
        with self._lock:
            return copy.deepcopy(self._channels[str(channel_id)])

    def interaction_responses(self, interaction_id: str | int) -> list[InteractionReply]:
        """The callback, follow-ups and edits for one interaction, in arrival order."""
        with self._lock:
            rec = self._interactions.get(str(interaction_id))
            return list(rec.replies) if rec else []

    def commands(self, guild_id: str | int | None = None) -> list[JSON]:
        """Registered application commands: global ones, or a guild's."""
        with self._lock:
            stored = (
                self._global_commands if guild_id is None else self._guild_commands.get(str(guild_id), [])
            )
            return copy.deepcopy(stored)

    @property
    def intents(self) -> int | None:
        """The intents of the latest IDENTIFY."""
        with self._lock:
            return int(self.identifies[-1].get("intents", 0)) if self.identifies else None

    @property
    def connected_sessions(self) -> int:
        with self._lock:
            return sum(1 for s in self._sessions.values() if s.ws is not None and not s.ws.closed)

    @_on_fake_loop
    async def wait_for(
        self,
        what: Callable[[], Any] | tuple[str, str] | str,
        timeout: float = 5.0,
        *,
        count: int = 1,
        since: int = 0,
    ) -> Any:
        """Wait until a condition holds, re-checked on every change of the fake's state and every 50 ms.

        ``what`` is a predicate (its first truthy result is returned), or ``(method, path_regex)`` /
        ``"METHOD path_regex"``: then the ``count``-th successful matching call after ``since`` is
        returned.
        """
        if callable(what):
            return await self._wait_until(what, timeout, getattr(what, "__name__", "condition"))
        method, regex = what if isinstance(what, tuple) else what.split(" ", 1)
        pattern = re.compile(regex)

        def matching_call() -> DiscordCall | None:
            found = [
                c
                for c in self.calls[since:]
                if method in ("*", c.method) and not c.failed and pattern.fullmatch(c.path)
            ]
            return found[count - 1] if len(found) >= count else None

        return await self._wait_until(matching_call, timeout, f"{count} x {method} {regex}")

    @_on_fake_loop
    async def wait_ready(self, timeout: float = 5.0, *, count: int | None = None) -> int:
        """Wait for a connected, identified (or resumed) client; with ``count``, for that many
        READY/RESUMED sent in total. Returns the total."""

        def check() -> int | None:
            if count is not None:
                return self.ready_count if self.ready_count >= count else None
            return self.ready_count if self.connected_sessions else None

        result: int = await self._wait_until(check, timeout, "gateway client ready")
        return result

    # ------------------------------------------------------------------ gateway-driven helpers

    @_on_fake_loop
    async def disconnect_clients(self, code: int = 4000) -> int:
        """Close every gateway connection from the server side (sessions stay resumable)."""
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.server_closed = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=code), 2.0)
        return len(conns)

    @_on_fake_loop
    async def invalidate_sessions(self) -> None:
        """Forget all sessions: the next RESUME gets INVALID_SESSION and the client re-IDENTIFYs."""
        with self._lock:
            for session in self._sessions.values():
                session.alive = False

    @_on_fake_loop
    async def dispatch(self, event: str, data: JSON) -> JSON:
        """Send a raw dispatch to every live session that wants it (intents, content stripping)."""
        with self._lock:
            sessions = [s for s in self._sessions.values() if s.alive]
        for session in sessions:
            payload = self._for_session(session, event, data)
            if payload is not None:
                await self._send_dispatch(session, event, payload)
        return data

    @_on_fake_loop
    async def slash_command(
        self,
        user_id: str | int,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        subcommand: str | None = None,
        channel_id: str | int | None = None,
    ) -> JSON:
        """Dispatch an application command (INTERACTION_CREATE type 2); returns the payload.

        ``subcommand`` may be ``"sub"`` or ``"group sub"``. Option types come from the registered
        command when there is one (unknown or missing required options raise ``ValueError``), else
        from the Python values.
        """
        with self._lock:
            cid = str(channel_id or self.channel_id)
            command, guild_id = self._find_command(name)
            path = subcommand.split() if subcommand else []
            schema = command.get("options", []) if command else None
            nested = self._build_options(name, path, options, schema)
            data: JSON = {"id": command["id"] if command else self.snowflake(), "name": name, "type": 1}
            if nested:
                data["options"] = nested
            if guild_id is not None:
                data["guild_id"] = guild_id
            payload = self._interaction_payload(2, user_id, cid)
            payload["data"] = data
            self._remember_interaction(payload, cid, None)
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    @_on_fake_loop
    async def click(
        self,
        user_id: str | int,
        message_id: str | int,
        custom_id: str,
        *,
        component_type: int = 2,
        values: Sequence[str] | None = None,
    ) -> JSON:
        """Dispatch a component click (INTERACTION_CREATE type 3) on a stored message.

        Raises ``ValueError`` when the message has no component with that ``custom_id``: Discord
        cannot produce such a click, and discord.py would drop it silently anyway.
        """
        with self._lock:
            mid = str(message_id)
            if mid not in self._messages:
                raise KeyError(f"unknown message {mid}")
            message = self._render_message(mid)
            component = _find_component(message.get("components", []), custom_id)
            if component is None:
                raise ValueError(f"message {mid} has no component with custom_id {custom_id!r}")
            payload = self._interaction_payload(3, user_id, str(message["channel_id"]))
            data: JSON = {"custom_id": custom_id, "component_type": component_type}
            if "id" in component:
                data["id"] = component["id"]
            if values is not None:
                data["values"] = list(values)
            payload["data"] = data
            payload["message"] = message
            self._remember_interaction(payload, str(message["channel_id"]), mid)
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    def modal(self, interaction_id: str | int) -> JSON:
        """The modal an interaction was answered with (callback type 9); KeyError when there is none."""
        with self._lock:
            rec = self._interactions.get(str(interaction_id))
            if rec is None or rec.modal is None:
                raise KeyError(f"interaction {interaction_id} was not answered with a modal")
            return copy.deepcopy(rec.modal)

    @_on_fake_loop
    async def submit_modal(
        self,
        interaction_id: str | int,
        values: Mapping[str, str],
        *,
        user_id: str | int | None = None,
        crafted: bool = False,
    ) -> JSON:
        """The person submits the modal opened in answer to ``interaction_id``: INTERACTION_CREATE type 5.

        ``values`` maps each text input's ``custom_id`` to what was typed. Like Discord's client, the
        fake refuses (``ValueError``) a value longer than the input's ``max_length``, a missing required
        one, a second submission, and a submission by someone other than the person who opened it
        (``user_id`` defaults to them), unless ``crafted=True``: a hand-made request checked by nobody.
        """
        with self._lock:
            rec = self._interactions.get(str(interaction_id))
            if rec is None or rec.modal is None:
                raise KeyError(f"interaction {interaction_id} was not answered with a modal")
            opener = str(rec.payload.get("member", {}).get("user", {}).get("id", ""))
            uid = str(user_id) if user_id is not None else opener
            if not crafted and rec.submitted:
                raise ValueError(f"the modal of interaction {interaction_id} was already submitted")
            if not crafted and uid != opener:
                raise ValueError("only the person who opened a modal can submit it")
            rows: list[JSON] = []
            for row in rec.modal.get("components", []):
                inputs: list[JSON] = []
                for text_input in row.get("components", []):
                    cid = text_input["custom_id"]
                    value = str(values.get(cid, ""))
                    if not crafted:
                        if text_input.get("required", True) and not value:
                            raise ValueError(f"the required input {cid!r} is empty")
                        if len(value) > int(text_input.get("max_length", 4000)):
                            raise ValueError(f"{cid!r} is longer than its max_length")
                    inputs.append({"type": 4, "custom_id": cid, "value": value})
                rows.append({"type": 1, "components": inputs})
            payload = self._interaction_payload(5, uid, rec.channel_id)
            payload["data"] = {"custom_id": rec.modal["custom_id"], "components": rows}
            if rec.message_id is not None and rec.message_id in self._messages:
                payload["message"] = self._render_message(rec.message_id)
            rec.submitted = True
            self._remember_interaction(payload, rec.channel_id, rec.message_id)
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    @_on_fake_loop
    async def post_user_message(self, user_id: str | int, channel_id: str | int, content: str) -> JSON:
        """A member posts in a channel or thread: stored, and MESSAGE_CREATE dispatched.

        Content reaches only clients with the message-content intent (unless it mentions the bot).
        """
        uid = str(user_id)
        with self._lock:
            cid = self._require_channel(str(channel_id))
            if uid not in self._members:
                raise KeyError(f"user {uid} is not a member: add_member() first")
            msg = self._store_new_message(cid, self._users[uid], {"content": content})
        await self._dispatch_message("MESSAGE_CREATE", msg)
        return msg

    @_on_fake_loop
    async def add_reaction(
        self, user_id: str | int, channel_id: str | int, message_id: str | int, emoji: str
    ) -> JSON:
        """A member reacts (unicode emoji such as "✅"): MESSAGE_REACTION_ADD is dispatched."""
        uid, cid, mid = str(user_id), str(channel_id), str(message_id)
        with self._lock:
            self._require_message(cid, mid)
            users = self._reactions.setdefault(mid, {}).setdefault(emoji, [])
            if uid not in users:
                users.append(uid)
            payload = self._reaction_event(uid, cid, mid, emoji, with_member=True)
        await self.dispatch("MESSAGE_REACTION_ADD", payload)
        return payload

    @_on_fake_loop
    async def remove_reaction(
        self, user_id: str | int, channel_id: str | int, message_id: str | int, emoji: str
    ) -> JSON:
        uid, cid, mid = str(user_id), str(channel_id), str(message_id)
        with self._lock:
            self._require_message(cid, mid)
            users = self._reactions.get(mid, {}).get(emoji, [])
            if uid in users:
                users.remove(uid)
            payload = self._reaction_event(uid, cid, mid, emoji, with_member=False)
        await self.dispatch("MESSAGE_REACTION_REMOVE", payload)
        return payload

    # ------------------------------------------------------------------ failure injection

    def fail(
        self, method: str, path_regex: str, status: int = 500, times: int | None = 1, *, commit: bool = False
    ) -> None:
        """Answer matching calls with ``status`` (Discord's error JSON). ``commit=True`` applies the
        request first, so the change lands although the client sees a failure."""
        self.faults.add(Fault(method.upper(), full_path(path_regex), "status", times, status=status, commit=commit))

    def rate_limit(
        self,
        method: str,
        path_regex: str,
        retry_after: float = 0.5,
        times: int | None = 1,
        global_: bool = False,
    ) -> None:
        """Answer matching calls with Discord's 429 (body, ``Retry-After``, ``X-RateLimit-*``, ``Via``)."""
        self.faults.add(Fault(method.upper(), full_path(path_regex), "429", times, status=429,
                              retry_after=retry_after, global_=global_))

    def timeout(
        self, method: str, path_regex: str, seconds: float | None = None, times: int | None = 1
    ) -> None:
        """Hold matching calls ``seconds`` (default ``hang_seconds``), then answer 504 like Cloudflare."""
        hold = self.hang_seconds if seconds is None else seconds
        self.faults.add(Fault(method.upper(), full_path(path_regex), "timeout", times, status=504, seconds=hold))

    def delay(self, method: str, path_regex: str, seconds: float, times: int | None = None) -> None:
        """Hold matching calls ``seconds`` before handling them normally."""
        self.faults.add(Fault(method.upper(), full_path(path_regex), "delay", times, seconds=seconds))

    def fail_randomly(
        self,
        fraction: float,
        seed: int = 0,
        kinds: Sequence[FaultKind] = ("500", "429", "timeout"),
        *,
        path_regex: str = r".*",
        retry_after: float = 0.2,
        hang_seconds: float | None = None,
    ) -> None:
        """Fail ``fraction`` of the matching calls, choosing among ``kinds`` with a seeded RNG."""
        pattern = full_path(path_regex)
        hang = self.hang_seconds if hang_seconds is None else hang_seconds
        outcomes = {
            "429": Fault("*", pattern, "429", 1, status=429, retry_after=retry_after),
            "timeout": Fault("*", pattern, "timeout", 1, status=504, seconds=hang),
            "500": Fault("*", pattern, "status", 1, status=500),
        }
        self.faults.randomly(fraction, seed, [outcomes[kind] for kind in kinds],
                             lambda method, path: pattern.search(path) is not None)

    def clear_faults(self) -> None:
        self.faults.clear()

    # ------------------------------------------------------------------ internals: faults

    async def _answer_fault(self, call: DiscordCall, fault: Fault, bucket: str) -> web.Response:
        call.failed = True
        status = fault.status or 500
        call.status = status
        if fault.kind == "429":
            call.fault = "429"
            retry = fault.retry_after
            scope = "global" if fault.global_ else "user"
            body: Any = {
                "message": "You are being rate limited.",
                "retry_after": retry,
                "global": fault.global_,
            }
            if fault.global_:
                body["code"] = 0
            headers = {
                "Retry-After": str(max(1, math.ceil(retry))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
                "X-RateLimit-Reset-After": f"{retry:.3f}",
                "X-RateLimit-Bucket": bucket,
                "X-RateLimit-Scope": scope,
                "Via": "1.1 google",
            }
            if fault.global_:
                headers["X-RateLimit-Global"] = "true"
            call.response = body
            self._record(call)
            return _json_response(429, body, headers)
        if fault.kind == "timeout":
            call.fault = "timeout"
            self._record(call)
            await self._sleep(fault.seconds)
            return web.Response(
                status=504,
                text="<html><body><h1>504 Gateway Time-out</h1></body></html>",
                content_type="text/html",
            )
        call.fault = str(status)
        body = {"message": f"{status}: {_STATUS_TEXT.get(status, 'Error')}", "code": 0}
        call.response = body
        self._record(call)
        return _json_response(status, body, {"Via": "1.1 google"})

    # ------------------------------------------------------------------ internals: REST plumbing

    def _record(self, call: DiscordCall) -> None:
        with self._lock:
            self.calls.append(call)
        self._bump()

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], _Handler, bool]]:
        ch = r"/channels/(?P<channel_id>\d+)"
        msg = ch + r"/messages/(?P<message_id>\d+)"
        react = msg + r"/reactions/(?P<emoji>[^/]+)"
        app = r"/applications/(?P<app_id>\d+)"
        hook = r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)"
        table: list[tuple[str, str, _Handler, bool]] = [
            ("GET", r"/users/@me", self._r_get_me, True),
            ("GET", r"/users/(?P<user_id>\d+)", self._r_get_user, True),
            ("POST", r"/users/@me/channels", self._r_create_dm, True),
            ("GET", r"/oauth2/applications/@me", self._r_get_application, True),
            ("GET", r"/applications/@me", self._r_get_application, True),
            ("GET", r"/gateway", self._r_get_gateway, False),
            ("GET", r"/gateway/bot", self._r_get_gateway_bot, True),
            ("GET", ch, self._r_get_channel, True),
            ("POST", ch + r"/typing", self._r_typing, True),
            ("GET", ch + r"/messages", self._r_list_messages, True),
            ("POST", ch + r"/messages", self._r_create_message, True),
            ("GET", msg, self._r_get_message, True),
            ("PATCH", msg, self._r_edit_message, True),
            ("DELETE", msg, self._r_delete_message, True),
            ("PUT", react + r"/@me", self._r_add_own_reaction, True),
            ("DELETE", react + r"/@me", self._r_remove_own_reaction, True),
            ("DELETE", react + r"/(?P<user_id>\d+)", self._r_remove_user_reaction, True),
            ("GET", react, self._r_get_reactions, True),
            ("POST", msg + r"/threads", self._r_thread_from_message, True),
            ("POST", ch + r"/threads", self._r_thread_without_message, True),
            ("PUT", ch + r"/thread-members/@me", self._r_join_thread, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)", self._r_get_guild, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/channels", self._r_get_guild_channels, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/roles", self._r_get_roles, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)", self._r_get_member, True),
            ("GET", app + r"/commands", self._r_get_commands, True),
            ("PUT", app + r"/commands", self._r_put_commands, True),
            ("POST", app + r"/commands", self._r_post_command, True),
            ("GET", app + r"/guilds/(?P<guild_id>\d+)/commands", self._r_get_commands, True),
            ("PUT", app + r"/guilds/(?P<guild_id>\d+)/commands", self._r_put_commands, True),
            ("POST", app + r"/guilds/(?P<guild_id>\d+)/commands", self._r_post_command, True),
            (
                "POST",
                r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback",
                self._r_callback,
                False,
            ),
            ("POST", hook, self._r_followup, False),
            ("GET", hook + r"/messages/(?P<message_id>@original|\d+)", self._r_get_hook_message, False),
            ("PATCH", hook + r"/messages/(?P<message_id>@original|\d+)", self._r_edit_hook_message, False),
            ("DELETE", hook + r"/messages/(?P<message_id>@original|\d+)", self._r_delete_hook_message, False),
        ]
        return [(m, re.compile(p), h, auth) for m, p, h, auth in table]

    async def _read_body(self, request: web.Request) -> Any:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            raw = form.get("payload_json")
            body: Any = json.loads(str(raw)) if raw is not None else {}
            if isinstance(body, dict):
                body["_files"] = [
                    str(getattr(v, "filename", k)) for k, v in form.items() if k != "payload_json"
                ]
            return body
        raw_bytes = await request.read()
        if not raw_bytes:
            return None
        try:
            return json.loads(raw_bytes)
        except ValueError:
            return raw_bytes.decode("utf-8", "replace")

    async def _handle_rest(self, request: web.Request) -> web.StreamResponse:
        method = request.method.upper()
        path = request.path[len(API_PREFIX) :] or "/"
        call = DiscordCall(method, path, None, dict(request.headers), time.monotonic(), dict(request.query))
        call.json = await self._read_body(request)
        route_key = f"{method} {re.sub(r'[0-9]+', '{id}', path)}"
        bucket = hashlib.sha1(route_key.encode()).hexdigest()[:32]

        delay = self.faults.take(method, path, kinds=_DELAY.__eq__, chance=False)
        if delay is not None:
            await self._sleep(delay.seconds)
        fault = self.faults.take(method, path, kinds=_DELAY.__ne__)
        if fault is not None and not fault.commit:
            return await self._answer_fault(call, fault, bucket)

        status, body = await self._route(request, call)
        if fault is not None:  # committed: the change landed though the client sees a failure
            return await self._answer_fault(call, fault, bucket)
        call.status = 204 if body is None and status < 300 else status
        call.failed = status >= 400
        call.response = body
        self._record(call)
        headers = {  # generous: discord.py must never pre-emptively wait on the fake's buckets
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": bucket,
            "Via": "1.1 google",
        }
        return _json_response(status, body, headers)

    async def _route(self, request: web.Request, call: DiscordCall) -> tuple[int, Any]:
        path_matched = False
        for method, pattern, handler, needs_auth in self._routes:
            match = pattern.fullmatch(call.path)
            if match is None:
                continue
            path_matched = True
            if method != call.method:
                continue
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                return 401, {"message": "401: Unauthorized", "code": 0}
            req = _Req(call.method, call.path, match.groupdict(), call.json, call.query)
            try:
                return await handler(req)
            except _HTTPError as exc:
                return exc.status, exc.body
        if path_matched:
            return 405, {"message": "405: Method Not Allowed", "code": 0}
        return 404, {"message": "404: Not Found", "code": 0}

    # ------------------------------------------------------------------ REST: users, app, gateway

    async def _r_get_me(self, req: _Req) -> tuple[int, Any]:
        return 200, copy.deepcopy(self.bot_user)

    async def _r_get_user(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            user = self._users.get(req.params["user_id"])
            if user is None:
                raise _unknown("User", 10013)
            return 200, copy.deepcopy(user)

    async def _r_get_application(self, req: _Req) -> tuple[int, Any]:
        return 200, {
            "id": self.application_id,
            "name": "signoff",
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": hashlib.sha256(self.application_id.encode()).hexdigest(),
            "flags": (1 << 15) | (1 << 19) | (1 << 23),  # members / message content limited, cmd badge
            "owner": copy.deepcopy(self._users[self.owner_id]),
            "team": None,
            "bot": copy.deepcopy(self.bot_user),
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
            "approximate_guild_count": 1,
        }

    async def _r_get_gateway(self, req: _Req) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    async def _r_get_gateway_bot(self, req: _Req) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }

    # ------------------------------------------------------------------ REST: guild

    def _require_guild(self, guild_id: str) -> None:
        if guild_id != self.guild_id:
            raise _unknown("Guild", 10004)

    async def _r_get_guild(self, req: _Req) -> tuple[int, Any]:
        self._require_guild(req.params["guild_id"])
        with self._lock:
            return 200, self._guild_payload(gateway=False)

    async def _r_get_guild_channels(self, req: _Req) -> tuple[int, Any]:
        self._require_guild(req.params["guild_id"])
        with self._lock:
            return 200, [copy.deepcopy(self._channels[c]) for c in self._channel_order]

    async def _r_get_roles(self, req: _Req) -> tuple[int, Any]:
        self._require_guild(req.params["guild_id"])
        with self._lock:
            return 200, copy.deepcopy(self._roles)

    async def _r_get_member(self, req: _Req) -> tuple[int, Any]:
        self._require_guild(req.params["guild_id"])
        with self._lock:
            member = self._members.get(req.params["user_id"])
            if member is None:
                raise _unknown("Member", 10007)
            return 200, copy.deepcopy(member)

    # ------------------------------------------------------------------ REST: channels and messages

    def _require_channel(self, channel_id: str) -> str:
        if channel_id not in self._channels:
            raise _unknown("Channel", 10003)
        return channel_id

    def _require_message(self, channel_id: str, message_id: str) -> JSON:
        self._require_channel(channel_id)
        msg = self._messages.get(message_id)
        if msg is None or msg["channel_id"] != channel_id or msg["flags"] & FLAG_EPHEMERAL:
            raise _unknown("Message", 10008)
        return msg

    async def _r_create_dm(self, req: _Req) -> tuple[int, Any]:
        """POST /users/@me/channels {recipient_id}: the DM channel with that user (type 1), the same one each time."""
        body = req.json if isinstance(req.json, dict) else {}
        recipient = str(body.get("recipient_id") or "")
        if not recipient.isdigit():
            raise _invalid("recipient_id", f"Value \"{recipient}\" is not snowflake.")
        with self._lock:
            for channel in self._channels.values():
                if channel["type"] == 1 and channel["recipients"][0]["id"] == recipient:
                    return 200, copy.deepcopy(channel)
            user = self._users.get(recipient) or self._user_payload(recipient, f"user{recipient[-4:]}")
            cid = self.snowflake()
            self._channels[cid] = {"id": cid, "type": 1, "last_message_id": None, "flags": 0,
                                   "recipients": [copy.deepcopy(user)]}
            self._channel_messages[cid] = []
            return 200, copy.deepcopy(self._channels[cid])

    def dm_messages(self, user_id: str | int) -> list[JSON]:
        """The bot's direct messages to a user (empty when it never opened a DM with them)."""
        with self._lock:
            found = [cid for cid, c in self._channels.items()
                     if c["type"] == 1 and c["recipients"][0]["id"] == str(user_id)]
        return self.messages(found[0]) if found else []

    async def _r_get_channel(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            return 200, copy.deepcopy(self._channels[self._require_channel(req.params["channel_id"])])

    async def _r_typing(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            self._require_channel(req.params["channel_id"])
        return 204, None

    async def _r_list_messages(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            cid = self._require_channel(req.params["channel_id"])
            ids = list(self._channel_messages.get(cid, []))
            limit = max(1, min(100, int(req.query.get("limit", "50"))))
            if "before" in req.query:
                ids = [m for m in ids if int(m) < int(req.query["before"])]
            if "after" in req.query:
                ids = [m for m in ids if int(m) > int(req.query["after"])][:limit]
            return 200, [self._render_message(m) for m in reversed(ids[-limit:])]

    async def _r_get_message(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            msg = self._require_message(req.params["channel_id"], req.params["message_id"])
            return 200, self._render_message(str(msg["id"]))

    async def _r_create_message(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            cid = self._require_channel(req.params["channel_id"])
            _validate_message(body, creating=True)
            nonce = body.get("nonce")
            if nonce is not None and body.get("enforce_nonce"):
                existing = self._nonces.get((cid, str(nonce)))
                if existing is not None:
                    return 200, self._render_message(existing)
            msg = self._store_new_message(cid, self.bot_user, body)
            if nonce is not None:
                self._nonces[(cid, str(nonce))] = str(msg["id"])
        await self._dispatch_message("MESSAGE_CREATE", msg)
        return 200, msg

    async def _r_edit_message(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            msg = self._require_message(req.params["channel_id"], req.params["message_id"])
            if msg["author"]["id"] != self.bot_user_id and set(body) - {"flags"}:
                raise _HTTPError(403, "Cannot edit a message authored by another user", 50005)
            _validate_message(body, creating=False)
            self._apply_edit(msg, body)
            rendered = self._render_message(str(msg["id"]))
        await self._dispatch_message("MESSAGE_UPDATE", rendered)
        return 200, rendered

    async def _r_delete_message(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            msg = self._require_message(req.params["channel_id"], req.params["message_id"])
            self._delete_message(str(msg["id"]))
        await self.dispatch(
            "MESSAGE_DELETE", {"id": msg["id"], "channel_id": msg["channel_id"], "guild_id": self.guild_id}
        )
        return 204, None

    # ------------------------------------------------------------------ REST: reactions

    async def _r_add_own_reaction(self, req: _Req) -> tuple[int, Any]:
        cid, mid, emoji = req.params["channel_id"], req.params["message_id"], req.params["emoji"]
        with self._lock:
            self._require_message(cid, mid)
            users = self._reactions.setdefault(mid, {}).setdefault(emoji, [])
            if self.bot_user_id in users:
                return 204, None
            users.append(self.bot_user_id)
            event = self._reaction_event(self.bot_user_id, cid, mid, emoji, with_member=True)
        await self.dispatch("MESSAGE_REACTION_ADD", event)
        return 204, None

    async def _r_remove_own_reaction(self, req: _Req) -> tuple[int, Any]:
        return await self._remove_reaction(req, self.bot_user_id)

    async def _r_remove_user_reaction(self, req: _Req) -> tuple[int, Any]:
        return await self._remove_reaction(req, req.params["user_id"])

    async def _remove_reaction(self, req: _Req, user_id: str) -> tuple[int, Any]:
        cid, mid, emoji = req.params["channel_id"], req.params["message_id"], req.params["emoji"]
        with self._lock:
            self._require_message(cid, mid)
            users = self._reactions.get(mid, {}).get(emoji, [])
            if user_id not in users:
                return 204, None
            users.remove(user_id)
            event = self._reaction_event(user_id, cid, mid, emoji, with_member=False)
        await self.dispatch("MESSAGE_REACTION_REMOVE", event)
        return 204, None

    async def _r_get_reactions(self, req: _Req) -> tuple[int, Any]:
        cid, mid, emoji = req.params["channel_id"], req.params["message_id"], req.params["emoji"]
        with self._lock:
            self._require_message(cid, mid)
            users = self._reactions.get(mid, {}).get(emoji, [])
            return 200, [copy.deepcopy(self._users[u]) for u in users if u in self._users]

    # ------------------------------------------------------------------ REST: threads

    async def _r_thread_from_message(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            cid, mid = req.params["channel_id"], req.params["message_id"]
            msg = self._require_message(cid, mid)
            if self._channels[cid]["type"] in (10, 11, 12):
                raise _HTTPError(400, "Cannot execute action on this channel type", 50024)
            if mid in self.threads:
                raise _HTTPError(400, "A thread has already been created for this message", 160004)
            thread = self._new_thread(mid, cid, body, 11)
            self.threads[mid] = mid
            msg["flags"] |= FLAG_HAS_THREAD
            msg["thread"] = thread
            payload = copy.deepcopy(thread)
        await self.dispatch("THREAD_CREATE", {**payload, "newly_created": True})
        return 201, payload

    async def _r_thread_without_message(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            cid = self._require_channel(req.params["channel_id"])
            kind = int(body.get("type", 12))
            if kind not in (11, 12):
                raise _invalid("type", "Value must be one of {11, 12}.")
            thread = self._new_thread(self.snowflake(), cid, body, kind)
            payload = copy.deepcopy(thread)
        await self.dispatch("THREAD_CREATE", {**payload, "newly_created": True})
        return 201, payload

    async def _r_join_thread(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            cid = self._require_channel(req.params["channel_id"])
            if self._channels[cid]["type"] not in (10, 11, 12):
                raise _HTTPError(400, "Cannot execute action on this channel type", 50024)
        return 204, None

    def _new_thread(self, thread_id: str, parent_id: str, body: JSON, kind: int) -> JSON:
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise _invalid("name", "Must be between 1 and 100 in length.", "BASE_TYPE_BAD_LENGTH")
        now = _now_iso()
        thread: JSON = {
            "id": thread_id,
            "type": kind,
            "guild_id": self.guild_id,
            "parent_id": parent_id,
            "owner_id": self.bot_user_id,
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": int(body.get("rate_limit_per_user") or 0),
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": int(body.get("auto_archive_duration") or 1440),
                "archive_timestamp": now,
                "locked": False,
                "create_timestamp": now,
            },
            "member": {"id": thread_id, "user_id": self.bot_user_id, "join_timestamp": now, "flags": 0},
        }
        self._channels[thread_id] = thread
        self._channel_messages[thread_id] = []
        return thread

    # ------------------------------------------------------------------ REST: application commands

    def _command_list(self, req: _Req) -> list[JSON]:
        if req.params["app_id"] != self.application_id:
            raise _HTTPError(403, "Missing Access", 50001)
        guild_id = req.params.get("guild_id")
        if guild_id is None:
            return self._global_commands
        self._require_guild(guild_id)
        return self._guild_commands.setdefault(guild_id, [])

    def _stored_command(self, body: JSON, guild_id: str | None, old: list[JSON]) -> JSON:
        name = body.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower():
            raise _invalid("name", "Command name is invalid", "APPLICATION_COMMAND_INVALID_NAME")
        kind = int(body.get("type", 1))
        if kind == 1 and not body.get("description"):
            raise _invalid("description", "This field is required", "BASE_TYPE_REQUIRED")
        previous = next((c for c in old if c["name"] == name and c["type"] == kind), None)
        stored: JSON = {
            "default_member_permissions": None,
            "nsfw": False,
            "contexts": None,
            "integration_types": [0],
            "options": [],
            **copy.deepcopy(body),
            "id": previous["id"] if previous else self.snowflake(),
            "application_id": self.application_id,
            "type": kind,
            "version": self.snowflake(),
        }
        stored.setdefault("description", "")
        if guild_id is not None:
            stored["guild_id"] = guild_id
        return stored

    async def _r_get_commands(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            return 200, copy.deepcopy(self._command_list(req))

    async def _r_put_commands(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, list) else []
        with self._lock:
            current = self._command_list(req)
            stored = [self._stored_command(c, req.params.get("guild_id"), current) for c in body]
            names = [(c["name"], c["type"]) for c in stored]
            if len(set(names)) != len(names):
                raise _invalid(
                    "0.name",
                    "Application command names must be unique",
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                )
            current[:] = stored
            return 200, copy.deepcopy(stored)

    async def _r_post_command(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            current = self._command_list(req)
            stored = self._stored_command(body, req.params.get("guild_id"), current)
            current[:] = [c for c in current if c["id"] != stored["id"]] + [stored]
            return 201, copy.deepcopy(stored)

    # ------------------------------------------------------------------ REST: interactions

    async def _r_callback(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            rec = self._interactions.get(req.params["interaction_id"])
            if rec is None or rec.token != req.params["token"]:
                raise _unknown("interaction", 10062)
            if rec.callback_type is not None:
                raise _HTTPError(400, "Interaction has already been acknowledged.", 40060)
            deadline = self.interaction_deadline
            if deadline is not None and time.monotonic() - rec.created > deadline:
                raise _unknown("interaction", 10062)
            kind = int(body.get("type", 0))
            data = body.get("data") or {}
            if kind in (6, 7) and rec.type not in (3, 5):
                raise _invalid("type", "Interaction callback type is invalid for this interaction")
            if kind not in (1, 4, 5, 6, 7, 8, 9):
                raise _invalid("type", "Value must be one of (1, 4, 5, 6, 7, 8, 9, 10, 12).")
            if kind in (4, 7):
                _validate_message(data, creating=kind == 4)
            if kind == 9:
                if rec.type not in (2, 3):  # a modal answers a command or a click, never a modal submit
                    raise _invalid("type", "Interaction callback type is invalid for this interaction")
                _validate_modal(data)
                rec.modal = copy.deepcopy(data)
            rec.callback_type = kind
            interaction: JSON = {"id": rec.id, "type": rec.type}
            resource: JSON | None = None
            created: JSON | None = None
            updated: JSON | None = None
            ephemeral = bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            if kind in (4, 5):
                content = (
                    data
                    if kind == 4
                    else {"content": "", "flags": int(data.get("flags") or 0) | FLAG_LOADING}
                )
                msg = self._store_new_message(
                    rec.channel_id,
                    self.bot_user,
                    content,
                    msg_type=20 if rec.type == 2 else 0,
                    interaction=rec,
                )
                rec.original_id = str(msg["id"])
                rec.loading = kind == 5
                interaction.update(
                    response_message_id=msg["id"],
                    response_message_loading=kind == 5,
                    response_message_ephemeral=ephemeral,
                )
                resource = {"type": kind, "message": msg}
                created = None if ephemeral else msg
            elif kind in (6, 7):
                rec.original_id = rec.message_id
                if kind == 7 and rec.message_id is not None:
                    target = self._messages[rec.message_id]
                    self._apply_edit(target, data)
                    updated = self._render_message(rec.message_id)
                    resource = {"type": 7, "message": updated}
                    if target["flags"] & FLAG_EPHEMERAL:
                        updated = None
            rec.replies.append(
                InteractionReply(
                    "callback", kind, copy.deepcopy(body), rec.original_id, ephemeral, time.monotonic()
                )
            )
            answer: JSON = {"interaction": interaction}
            if resource is not None:
                answer["resource"] = resource
        if created is not None:
            await self._dispatch_message("MESSAGE_CREATE", created)
        if updated is not None:
            await self._dispatch_message("MESSAGE_UPDATE", updated)
        if req.query.get("with_response", "").lower() in ("1", "true"):
            return 200, answer
        return 204, None

    def _require_hook(self, req: _Req) -> _Interaction:
        rec = self._by_token.get(req.params["token"])
        if req.params["app_id"] != self.application_id or rec is None or rec.callback_type is None:
            raise _unknown("Webhook", 10015)
        return rec

    async def _r_followup(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            rec = self._require_hook(req)
            _validate_message(body, creating=True)
            if rec.loading and rec.original_id is not None:
                # The first follow-up after a "thinking" defer replaces the loading message.
                target = self._messages[rec.original_id]
                edit = {k: v for k, v in body.items() if k != "flags"}
                self._apply_edit(target, edit)
                target["flags"] &= ~FLAG_LOADING
                rec.loading = False
                msg = self._render_message(rec.original_id)
                event = "MESSAGE_UPDATE"
            else:
                msg = self._store_new_message(rec.channel_id, self.bot_user, body, interaction=rec)
                event = "MESSAGE_CREATE"
            ephemeral = bool(msg["flags"] & FLAG_EPHEMERAL)
            rec.replies.append(
                InteractionReply(
                    "followup", None, copy.deepcopy(body), str(msg["id"]), ephemeral, time.monotonic()
                )
            )
        if not ephemeral:
            await self._dispatch_message(event, msg)
        if req.query.get("wait", "").lower() in ("1", "true"):
            return 200, msg
        return 204, None

    def _hook_target(self, rec: _Interaction, message_id: str) -> str:
        mid = rec.original_id if message_id == "@original" else message_id
        if mid is None or mid not in self._messages:
            raise _unknown("Message", 10008)
        if message_id != "@original" and self._messages[mid].get("webhook_id") != self.application_id:
            raise _unknown("Message", 10008)
        return mid

    async def _r_get_hook_message(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            rec = self._require_hook(req)
            return 200, self._render_message(self._hook_target(rec, req.params["message_id"]))

    async def _r_edit_hook_message(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            rec = self._require_hook(req)
            mid = self._hook_target(rec, req.params["message_id"])
            _validate_message(body, creating=False)
            target = self._messages[mid]
            self._apply_edit(target, {k: v for k, v in body.items() if k != "flags"})
            if mid == rec.original_id:
                target["flags"] &= ~FLAG_LOADING
                rec.loading = False
            msg = self._render_message(mid)
            ephemeral = bool(msg["flags"] & FLAG_EPHEMERAL)
            kind: Literal["edit_original", "edit_followup"] = (
                "edit_original" if req.params["message_id"] == "@original" else "edit_followup"
            )
            rec.replies.append(
                InteractionReply(kind, None, copy.deepcopy(body), mid, ephemeral, time.monotonic())
            )
        if not ephemeral:
            await self._dispatch_message("MESSAGE_UPDATE", msg)
        return 200, msg

    async def _r_delete_hook_message(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            rec = self._require_hook(req)
            mid = self._hook_target(rec, req.params["message_id"])
            msg = self._messages[mid]
            ephemeral = bool(msg["flags"] & FLAG_EPHEMERAL)
            self._delete_message(mid)
            rec.replies.append(InteractionReply("delete", None, {}, mid, ephemeral, time.monotonic()))
        if not ephemeral:
            await self.dispatch(
                "MESSAGE_DELETE", {"id": mid, "channel_id": msg["channel_id"], "guild_id": self.guild_id}
            )
        return 204, None

    # ------------------------------------------------------------------ gateway

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=0)
        await ws.prepare(request)
        conn = _Conn(ws, dict(request.query))
        with self._lock:
            self._conns.append(conn)
            self.gateway_connects.append(dict(request.query))
        self._bump()
        try:
            await ws.send_str(
                json.dumps(
                    {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None}
                )
            )
            while True:
                msg = await ws.receive()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    code = msg.data if msg.type is WSMsgType.CLOSE else None
                    if conn.session is not None and not conn.server_closed and code in (1000, 1001):
                        conn.session.alive = False  # a clean client close ends the session
                    break
                try:
                    frame = json.loads(msg.data if msg.type is WSMsgType.TEXT else bytes(msg.data).decode())
                except (ValueError, UnicodeDecodeError):
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                if not isinstance(frame, dict):
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                try:
                    await self._on_gateway_frame(conn, frame)
                except (ConnectionError, RuntimeError):
                    break  # the client went away mid-answer; its session stays resumable
                if ws.closed:
                    break
        finally:
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)
                if conn.session is not None and conn.session.ws is ws:
                    conn.session.ws = None
            self._bump()
        return ws

    async def _on_gateway_frame(self, conn: _Conn, frame: JSON) -> None:
        op = frame.get("op")
        data = frame.get("d")
        with self._lock:
            self.gateway_received.append(
                GatewayFrame(conn.session.session_id if conn.session else None, op, data, time.monotonic())
            )
        self._bump()
        ws = conn.ws
        if op == 1:
            await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
        elif op == 2:
            await self._identify(conn, data if isinstance(data, dict) else {})
        elif op == 6:
            await self._resume(conn, data if isinstance(data, dict) else {})
        elif op == 8 and conn.session is not None:
            await self._send_member_chunk(conn.session, data if isinstance(data, dict) else {})
        elif op in (3, 4, 8, 31, 36, 37):
            return
        else:
            await ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, conn: _Conn, data: JSON) -> None:
        ws = conn.ws
        if conn.session is not None:
            await ws.close(code=4005, message=b"Already authenticated.")
            return
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS and not self.privileged_intents_allowed:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        session = _Session(secrets.token_hex(16), intents, copy.deepcopy(data), ws=ws)
        with self._lock:
            self.identifies.append(copy.deepcopy(data))
            self._sessions[session.session_id] = session
            conn.session = session
            ready: JSON = {
                "v": 10,
                "user": copy.deepcopy(self.bot_user),
                "guilds": [{"id": self.guild_id, "unavailable": True}],
                "session_id": session.session_id,
                "session_type": "normal",
                "resume_gateway_url": self.gateway_url,
                "application": {"id": self.application_id, "flags": (1 << 15) | (1 << 19) | (1 << 23)},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": ["fake"],
                "user_settings": {},
                "auth": {},
                "shard": data.get("shard", [0, 1]),
                "_trace": ['["fake-discord",{"micros":0}]'],
            }
            guild = self._guild_payload(gateway=True, intents=intents)
        await self._send_dispatch(session, "READY", ready)
        if intents & INTENT_GUILDS:
            await self._send_dispatch(session, "GUILD_CREATE", guild)
        with self._lock:
            self.ready_count += 1
        self._bump()

    async def _resume(self, conn: _Conn, data: JSON) -> None:
        ws = conn.ws
        with self._lock:
            session = self._sessions.get(str(data.get("session_id")))
        if session is None or not session.alive or data.get("token") != self.token:
            await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return
        seq = int(data.get("seq") or 0)
        async with session.lock:
            old = session.ws
            session.ws = ws
            conn.session = session
            if old is not None and old is not ws and not old.closed:
                with contextlib.suppress(Exception):
                    await old.close(code=4000)
            for s, text in session.log:
                if s > seq:
                    await ws.send_str(text)
        await self._send_dispatch(session, "RESUMED", {"_trace": ['["fake-discord",{"micros":0}]']})
        with self._lock:
            self.ready_count += 1
        self._bump()

    async def _send_member_chunk(self, session: _Session, data: JSON) -> None:
        with self._lock:
            members = [copy.deepcopy(m) for m in self._members.values()]
            wanted = data.get("user_ids")
            if wanted:
                ids = {str(u) for u in (wanted if isinstance(wanted, list) else [wanted])}
                members = [m for m in members if m["user"]["id"] in ids]
        chunk: JSON = {
            "guild_id": self.guild_id,
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        if data.get("presences"):
            chunk["presences"] = []
        await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _send_dispatch(self, session: _Session, event: str, data: JSON) -> None:
        async with session.lock:
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": data}
            text = json.dumps(frame, ensure_ascii=False)
            session.log.append((session.seq, text))
            ws = session.ws
            if ws is not None and not ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(text)  # a lost frame is replayed on RESUME
        with self._lock:
            self.gateway_sent.append(frame)
        self._bump()

    def _for_session(self, session: _Session, event: str, data: JSON) -> JSON | None:
        """The dispatch as this session gets it: filtered by intents, content stripped if needed."""
        need = _EVENT_INTENTS.get(event)
        if need is not None and not session.intents & need:
            return None
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and not session.intents & INTENT_MESSAGE_CONTENT:
            author = data.get("author", {}).get("id")
            mentioned = any(m.get("id") == self.bot_user_id for m in data.get("mentions", []))
            if author != self.bot_user_id and not mentioned:
                return {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        return data

    async def _dispatch_message(self, event: str, msg: JSON) -> None:
        """MESSAGE_CREATE/UPDATE as the gateway sends them: with guild_id and the author's member."""
        if msg.get("flags", 0) & FLAG_EPHEMERAL:
            return
        with self._lock:
            payload = copy.deepcopy(msg)
            payload["guild_id"] = self.guild_id
            member = self._members.get(str(msg["author"]["id"]))
            if member is not None and not msg.get("webhook_id"):
                payload["member"] = {k: v for k, v in member.items() if k != "user"}
        await self.dispatch(event, payload)

    # ------------------------------------------------------------------ payload builders

    def _user_payload(self, user_id: str, username: str, *, bot: bool = False) -> JSON:
        user: JSON = {
            "id": user_id,
            "username": username,
            "discriminator": "0",
            "global_name": None if bot else username,
            "avatar": None,
            "public_flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "primary_guild": None,
        }
        if bot:
            user["bot"] = True
        return user

    def _role_payload(self, role_id: str, name: str, position: int, permissions: int) -> JSON:
        return {
            "id": role_id,
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def _member_payload(self, user_id: str, role_ids: Sequence[str]) -> JSON:
        return {
            "user": copy.deepcopy(self._users[user_id]),
            "roles": list(role_ids),
            "joined_at": _now_iso(),
            "nick": None,
            "avatar": None,
            "banner": None,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }

    def _member_permissions(self, user_id: str) -> int:
        member = self._members.get(user_id)
        if member is None:
            return 0
        if user_id == self.owner_id:
            return PERMS_ALL
        roles = {r["id"]: int(r["permissions"]) for r in self._roles}
        return functools.reduce(
            lambda acc, rid: acc | roles.get(rid, 0), member["roles"], roles[self.guild_id]
        )

    def _guild_payload(self, *, gateway: bool, intents: int = 0) -> JSON:
        guild: JSON = {
            "id": self.guild_id,
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": self.owner_id,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": copy.deepcopy(self._roles),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": self.channel_id,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
        }
        if not gateway:
            return guild
        members = [copy.deepcopy(m) for m in self._members.values()]
        if not intents & INTENT_GUILD_MEMBERS:  # Discord then sends only the bot's own member
            members = [m for m in members if m["user"]["id"] == self.bot_user_id]
        return {
            **guild,
            "unavailable": False,
            "joined_at": self._guild_joined_at,
            "large": False,
            "member_count": len(members),
            "members": members,
            "channels": [
                {k: v for k, v in self._channels[c].items() if k != "guild_id"} for c in self._channel_order
            ],
            "threads": [
                copy.deepcopy(c)
                for c in self._channels.values()
                if c["type"] in (10, 11, 12) and not c["thread_metadata"]["archived"]
            ],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "application_command_counts": {},
        }

    def _store_new_message(
        self,
        channel_id: str,
        author: JSON,
        body: JSON,
        *,
        msg_type: int = 0,
        interaction: _Interaction | None = None,
    ) -> JSON:
        """Create and store a message (ephemeral ones are kept out of the channel's list)."""
        mid = self.snowflake()
        content = str(body.get("content") or "")
        msg: JSON = {
            "id": mid,
            "channel_id": channel_id,
            "type": msg_type,
            "author": copy.deepcopy(author),
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts")),
            "mention_everyone": False,
            "mentions": [
                copy.deepcopy(self._users[u]) for u in _MENTION_RE.findall(content) if u in self._users
            ],
            "mention_roles": [],
            "attachments": [
                {"id": self.snowflake(), "filename": f, "size": 0, "url": "", "proxy_url": ""}
                for f in body.get("_files", [])
            ],
            "embeds": _normalise_embeds(body.get("embeds") or []),
            "components": _number_components(copy.deepcopy(body.get("components") or [])),
            "pinned": False,
            "flags": int(body.get("flags") or 0),
        }
        if body.get("nonce") is not None:
            msg["nonce"] = body["nonce"]
        if interaction is not None:
            msg["webhook_id"] = self.application_id
            msg["application_id"] = self.application_id
            user = interaction.payload["member"]["user"]
            msg["interaction_metadata"] = {
                "id": interaction.id,
                "type": interaction.type,
                "user": copy.deepcopy(user),
                "authorizing_integration_owners": {"0": self.guild_id},
            }
            if interaction.type == 3 and interaction.message_id is not None:
                msg["interaction_metadata"]["interacted_message_id"] = interaction.message_id
        self._messages[mid] = msg
        if not msg["flags"] & FLAG_EPHEMERAL:
            self._channel_messages.setdefault(channel_id, []).append(mid)
            channel = self._channels[channel_id]
            channel["last_message_id"] = mid
            if channel["type"] in (10, 11, 12):
                channel["message_count"] += 1
                channel["total_message_sent"] += 1
        self._bump()
        return self._render_message(mid)

    def _apply_edit(self, msg: JSON, body: JSON) -> None:
        if "content" in body:
            msg["content"] = str(body["content"] or "")
        if "embeds" in body:
            msg["embeds"] = _normalise_embeds(body["embeds"] or [])
        if "components" in body:
            msg["components"] = _number_components(copy.deepcopy(body["components"] or []))
        if "attachments" in body and body["attachments"] is not None:
            keep = {str(a.get("id")) for a in body["attachments"]}
            msg["attachments"] = [a for a in msg["attachments"] if str(a["id"]) in keep]
        if "flags" in body and body["flags"] is not None:
            suppress = 1 << 2  # only SUPPRESS_EMBEDS may be changed by an edit
            msg["flags"] = (msg["flags"] & ~suppress) | (int(body["flags"]) & suppress)
        msg["edited_timestamp"] = _now_iso()
        self._bump()

    def _delete_message(self, mid: str) -> None:
        msg = self._messages.pop(mid)
        ids = self._channel_messages.get(str(msg["channel_id"]), [])
        if mid in ids:
            ids.remove(mid)
        self._reactions.pop(mid, None)
        self._bump()

    def _render_message(self, mid: str) -> JSON:
        """A stored message as Discord returns it, with its reactions counted for the bot."""
        msg = copy.deepcopy(self._messages[mid])
        reactions = [
            {
                "emoji": _emoji_payload(emoji),
                "count": len(users),
                "count_details": {"burst": 0, "normal": len(users)},
                "burst_colors": [],
                "me": self.bot_user_id in users,
                "me_burst": False,
                "burst_me": False,
                "burst_count": 0,
            }
            for emoji, users in self._reactions.get(mid, {}).items()
            if users
        ]
        if reactions:
            msg["reactions"] = reactions
        return msg

    def _reaction_event(
        self, user_id: str, channel_id: str, message_id: str, emoji: str, *, with_member: bool
    ) -> JSON:
        event: JSON = {
            "user_id": user_id,
            "channel_id": channel_id,
            "message_id": message_id,
            "guild_id": self.guild_id,
            "emoji": _emoji_payload(emoji),
            "burst": False,
            "type": 0,
        }
        if with_member:
            event["burst_colors"] = []
            event["message_author_id"] = self._messages[message_id]["author"]["id"]
            if user_id in self._members:
                event["member"] = copy.deepcopy(self._members[user_id])
        return event

    def _interaction_payload(self, itype: int, user_id: str | int, channel_id: str) -> JSON:
        uid = str(user_id)
        if uid not in self._members:
            raise KeyError(f"user {uid} is not a member: add_member() first")
        self._require_channel(channel_id)
        member = {**copy.deepcopy(self._members[uid]), "permissions": str(self._member_permissions(uid))}
        channel = {**copy.deepcopy(self._channels[channel_id]), "permissions": member["permissions"]}
        return {
            "id": self.snowflake(),
            "application_id": self.application_id,
            "type": itype,
            "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
            "version": 1,
            "guild_id": self.guild_id,
            "guild": {"id": self.guild_id, "locale": "en-US", "features": []},
            "guild_locale": "en-US",
            "channel_id": channel_id,
            "channel": channel,
            "member": member,
            "locale": "en-US",
            "app_permissions": str(self._member_permissions(self.bot_user_id)),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": self.guild_id},
            "context": 0,
            "attachment_size_limit": 10_485_760,
        }

    def _remember_interaction(self, payload: JSON, channel_id: str, message_id: str | None) -> None:
        rec = _Interaction(
            str(payload["id"]),
            str(payload["token"]),
            int(payload["type"]),
            payload,
            channel_id,
            time.monotonic(),
            message_id=message_id,
        )
        self._interactions[rec.id] = rec
        self._by_token[rec.token] = rec
        self.interactions[rec.id] = payload

    def _find_command(self, name: str) -> tuple[JSON | None, str | None]:
        for command in self._guild_commands.get(self.guild_id, []):
            if command["name"] == name and command["type"] == 1:
                return command, self.guild_id
        for command in self._global_commands:
            if command["name"] == name and command["type"] == 1:
                return command, None
        return None, self.guild_id  # unregistered: guild_id lets a guild or global tree command match

    def _build_options(
        self,
        name: str,
        path: list[str],
        options: Mapping[str, Any] | Sequence[JSON] | None,
        schema: list[JSON] | None,
    ) -> list[JSON]:
        if path:
            sub = path[0]
            sub_schema: list[JSON] | None = None
            kind = 1 if len(path) == 1 else 2
            if schema is not None:
                found = next((o for o in schema if o.get("name") == sub and o.get("type") in (1, 2)), None)
                if found is None:
                    raise ValueError(f"/{name} has no subcommand {sub!r}")
                kind = int(found["type"])
                sub_schema = found.get("options", [])
            inner = self._build_options(f"{name} {sub}", path[1:], options, sub_schema)
            entry: JSON = {"type": kind, "name": sub}
            if inner or kind in (1, 2):
                entry["options"] = inner
            return [entry]
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            return [dict(o) for o in options]
        declared = {o["name"]: o for o in schema or [] if int(o.get("type", 3)) not in (1, 2)}
        out: list[JSON] = []
        for key, value in options.items():
            if schema is not None and key not in declared:
                raise ValueError(f"/{name} has no option {key!r} (declared: {sorted(declared)})")
            kind = int(declared[key]["type"]) if key in declared else _option_type(value)
            out.append({"name": key, "type": kind, "value": value})
        missing = [k for k, o in declared.items() if o.get("required") and k not in options]
        if missing:
            raise ValueError(f"/{name} is missing required options {missing}")
        return out


# ---------------------------------------------------------------------------------- helpers


def _option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3


def _emoji_payload(emoji: str) -> JSON:
    """``"✅"`` -> unicode emoji; ``"name:123"`` -> custom emoji."""
    name, _, emoji_id = emoji.partition(":")
    if emoji_id.isdigit():
        return {"id": emoji_id, "name": name, "animated": False}
    return {"id": None, "name": emoji}


def _walk_components(components: list[JSON]) -> Iterator[JSON]:
    for component in components:
        yield component
        yield from _walk_components(component.get("components", []))
        accessory = component.get("accessory")
        if isinstance(accessory, dict):
            yield accessory


def _find_component(components: list[JSON], custom_id: str) -> JSON | None:
    return next((c for c in _walk_components(components) if c.get("custom_id") == custom_id), None)


def _number_components(components: list[JSON]) -> list[JSON]:
    """Give every component a numeric ``id``, as Discord does for those sent without one."""
    used = {c["id"] for c in _walk_components(components) if isinstance(c.get("id"), int)}
    counter = 0
    for component in _walk_components(components):
        if not isinstance(component.get("id"), int):
            counter += 1
            while counter in used:
                counter += 1
            component["id"] = counter
    return components


def _normalise_embeds(embeds: list[JSON]) -> list[JSON]:
    out = []
    for original in embeds:
        embed = copy.deepcopy(original)
        embed.setdefault("type", "rich")
        for fld in embed.get("fields", []):
            fld.setdefault("inline", False)
        embed["content_scan_version"] = 0
        out.append(embed)
    return out


def _validate_message(body: JSON, *, creating: bool) -> None:
    """Discord's checks that catch real adapter bugs: lengths, empty messages, component limits."""
    content = body.get("content")
    if content is not None and len(str(content)) > 2000:
        raise _invalid("content", "Must be 2000 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        raise _invalid("embeds", "Must be 10 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
    for i, embed in enumerate(embeds):
        _validate_embed(i, embed)
    components = body.get("components") or []
    is_v2 = bool(int(body.get("flags") or 0) & (1 << 15))
    if not is_v2:
        if len(components) > 5:
            raise _invalid("components", "Must be 5 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
        for i, row in enumerate(components):
            if row.get("type") != 1:
                raise _invalid(
                    f"components.{i}.type", "Top-level components must be action rows", "UNION_TYPE_CHOICES"
                )
            if not 1 <= len(row.get("components", [])) <= 5:
                raise _invalid(
                    f"components.{i}.components", "Must be between 1 and 5 in length.", "BASE_TYPE_BAD_LENGTH"
                )
    seen: set[str] = set()
    for comp in _walk_components(components):
        custom_id = comp.get("custom_id")
        if comp.get("type") == 2 and comp.get("style") not in (5, 6) and not custom_id:
            raise _invalid("components", "A custom id is required", "BASE_TYPE_REQUIRED")
        if custom_id is not None:
            if len(str(custom_id)) > 100:
                raise _invalid("components", "Must be 100 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
            if custom_id in seen:
                raise _invalid(
                    "components", "Component custom id cannot be duplicated", "COMPONENT_CUSTOM_ID_DUPLICATED"
                )
            seen.add(str(custom_id))
        if comp.get("type") == 2 and len(str(comp.get("label") or "")) > 80:
            raise _invalid("components", "Must be 80 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
    if creating and not (
        content or embeds or components or body.get("_files") or body.get("sticker_ids") or body.get("poll")
    ):
        raise _HTTPError(400, "Cannot send an empty message", 50006)


def _validate_modal(data: JSON) -> None:
    """A modal as Discord accepts it: custom_id and title, 1-5 rows, each holding one text input."""
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
        raise _invalid("data.custom_id", "Must be between 1 and 100 in length.", "BASE_TYPE_BAD_LENGTH")
    title = data.get("title")
    if not isinstance(title, str) or not 1 <= len(title) <= 45:
        raise _invalid("data.title", "Must be between 1 and 45 in length.", "BASE_TYPE_BAD_LENGTH")
    rows = data.get("components")
    if not isinstance(rows, list) or not 1 <= len(rows) <= 5:
        raise _invalid("data.components", "Must be between 1 and 5 in length.", "BASE_TYPE_BAD_LENGTH")
    for index, row in enumerate(rows):
        inputs = row.get("components") if isinstance(row, dict) else None
        if row.get("type") != 1 or not isinstance(inputs, list) or len(inputs) != 1:
            raise _invalid(f"data.components.{index}", "A modal row holds exactly one text input.")
        text_input = inputs[0]
        if text_input.get("type") != 4 or text_input.get("style") not in (1, 2):
            raise _invalid(f"data.components.{index}.components.0", "Value must be a text input.")
        label = text_input.get("label")
        if not isinstance(label, str) or not 1 <= len(label) <= 45:
            raise _invalid(f"data.components.{index}.components.0.label", "Must be between 1 and 45 in length.",
                           "BASE_TYPE_BAD_LENGTH")
        if not 1 <= len(str(text_input.get("custom_id", ""))) <= 100:
            raise _invalid(f"data.components.{index}.components.0.custom_id",
                           "Must be between 1 and 100 in length.", "BASE_TYPE_BAD_LENGTH")
        if not 1 <= int(text_input.get("max_length", 4000)) <= 4000:
            raise _invalid(f"data.components.{index}.components.0.max_length", "Must be between 1 and 4000.")


def _validate_embed(index: int, embed: JSON) -> None:
    limits = {"title": 256, "description": 4096}
    total = 0
    for key, limit in limits.items():
        text = str(embed.get(key) or "")
        total += len(text)
        if len(text) > limit:
            raise _invalid(
                f"embeds.{index}.{key}", f"Must be {limit} or fewer in length.", "BASE_TYPE_MAX_LENGTH"
            )
    fields = embed.get("fields") or []
    if len(fields) > 25:
        raise _invalid(f"embeds.{index}.fields", "Must be 25 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
    for j, fld in enumerate(fields):
        name, value = str(fld.get("name") or ""), str(fld.get("value") or "")
        if not name or not value:
            raise _invalid(f"embeds.{index}.fields.{j}", "This field is required", "BASE_TYPE_REQUIRED")
        if len(name) > 256 or len(value) > 1024:
            raise _invalid(f"embeds.{index}.fields.{j}", "Field too long.", "BASE_TYPE_MAX_LENGTH")
        total += len(name) + len(value)
    footer = str((embed.get("footer") or {}).get("text") or "")
    author = str((embed.get("author") or {}).get("name") or "")
    if len(footer) > 2048 or len(author) > 256:
        raise _invalid(f"embeds.{index}", "Footer or author too long.", "BASE_TYPE_MAX_LENGTH")
    if total + len(footer) + len(author) > 6000:
        raise _invalid("embeds", "Embed size exceeds maximum size of 6000", "MAX_EMBED_SIZE_EXCEEDED")
